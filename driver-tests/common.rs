//! Shared fixtures: a throwaway store (`Store`) that unmounts and removes everything below it on
//! drop, the `lamina` runner, mount-table helpers. Where the fixtures are, and SKIP reporting,
//! come from the testkit (`lamina_testkit::env`), re-exported here.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use lamina_testkit::env::{corpus, have_tool, repo_dir, require_root, skip, test_images};

/// Tests that need most of the machine's disk bandwidth and memory (the corpus, the crash loop)
/// take this, so two of them never run at once.
pub fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Held while a mount with hundreds of lowers exists, and while a runtime runs: runc 1.1 parses
/// /proc/self/mountinfo with a 64 KiB line limit ("bufio.Scanner: token too long"), and such a mount's
/// line is longer.
pub fn long_mountinfo() -> MutexGuard<'static, ()> {
    static LONG: Mutex<()> = Mutex::new(());
    LONG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The binary under test: this build's, or LAMINA_BIN (e.g. a release build).
pub fn lamina_bin() -> PathBuf {
    std::env::var_os("LAMINA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lamina")))
}

/// A finished command with its words, for assertions with readable failures.
pub struct Run {
    pub cmd: String,
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(cmd: String, out: Output) -> Run {
        Run {
            cmd,
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// stdout and stderr together, split into lines also at the \r of progress output
    pub fn lines(&self) -> Vec<String> {
        format!("{}\n{}", self.stdout, self.stderr)
            .split(['\n', '\r'])
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    pub fn describe(&self) -> String {
        format!(
            "`{}` exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd, self.status, self.stdout, self.stderr
        )
    }

    pub fn expect_ok(self) -> Run {
        assert!(self.success(), "expected success: {}", self.describe());
        self
    }

    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.status,
            Some(code),
            "expected exit code {code}: {}",
            self.describe()
        );
        self
    }
}

/// Runs a command with `input` on its stdin (a password for `login --password-stdin`).
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Runs a command with a time limit, so a hung binary fails its test instead of the suite.
pub fn run(cmd: &mut Command, limit: Duration) -> Run {
    let text = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {text}: {e}"));
    let start = Instant::now();
    // reading the pipes on other threads keeps a chatty child from blocking on a full pipe
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{text} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = t_out.join().expect("reader");
    let stderr = t_err.join().expect("reader");
    Run::from_output(
        text,
        Output {
            status,
            stdout,
            stderr,
        },
    )
}

pub const LIMIT: Duration = Duration::from_secs(600);

/// A store root of its own under /var/tmp/lamina-tests, plus scratch space beside it: the one
/// runner of the `lamina` binary every driver test uses (manage's and registry's wrap it for the
/// return types their tests read). Drop unmounts everything mounted below it (deepest first) and
/// removes it.
pub struct Store {
    pub base: PathBuf,
    pub root: PathBuf,
    docker_config: Option<PathBuf>,
    /// applied in order to every command: Some sets the variable, None removes it
    env: Vec<(OsString, Option<OsString>)>,
}

impl Store {
    pub fn new(tag: &str) -> Store {
        let parent = PathBuf::from("/var/tmp/lamina-tests");
        std::fs::create_dir_all(&parent).expect("mkdir /var/tmp/lamina-tests");
        let base = tempfile::Builder::new()
            .prefix(&format!("{tag}-"))
            .tempdir_in(&parent)
            .expect("tempdir")
            .keep();
        let root = base.join("root");
        Store {
            base,
            root,
            docker_config: None,
            env: Vec::new(),
        }
    }

    /// The store root (`--root`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Gives the store a docker config dir of its own beside the root (DOCKER_CONFIG), so that
    /// nothing reads or writes the user's ~/.docker.
    pub fn with_docker_config(mut self) -> Store {
        let dir = self.scratch("docker-config");
        self.env
            .push(("DOCKER_CONFIG".into(), Some(dir.clone().into_os_string())));
        self.docker_config = Some(dir);
        self
    }

    /// The docker config dir, when `with_docker_config` gave it one.
    pub fn docker_config(&self) -> Option<&Path> {
        self.docker_config.as_deref()
    }

    /// Sets `key=value` for every command (after what was set before, so it overrides).
    pub fn env(mut self, key: &str, value: &str) -> Store {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// Removes `key` from every command's environment.
    pub fn env_remove(mut self, key: &str) -> Store {
        self.env.push((key.into(), None));
        self
    }

    /// A fresh directory beside the store root.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.base.join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        dir
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(lamina_bin());
        cmd.arg("--root")
            .arg(&self.root)
            .env("RUST_BACKTRACE", "1")
            .env_remove("LAMINA_ROOT");
        for (key, value) in &self.env {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        cmd
    }

    /// Starts `lamina ARGS` on this store with no stdio, for a test that will stop or kill it.
    pub fn spawn_silent<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> std::process::Child {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn lamina")
    }

    /// `lamina --root ROOT ARGS...` as it finished, stdin empty, no time limit: the raw output.
    pub fn output<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", lamina_bin().display()))
    }

    /// `lamina --root ROOT ARGS...`, whatever its exit code
    pub fn lamina<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        let mut cmd = self.command();
        cmd.args(args);
        run(&mut cmd, LIMIT)
    }

    /// the same, and it must succeed
    pub fn ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        self.lamina(args).expect_ok()
    }

    /// the same, and it must fail with exit code 1
    pub fn fails<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        self.exits(1, args)
    }

    /// the same, and it must exit with `code` (1 error, 2 usage)
    pub fn exits<S: AsRef<std::ffi::OsStr>>(&self, code: i32, args: &[S]) -> Run {
        self.lamina(args).expect_code(code)
    }

    /// `lamina load SOURCE [EXTRA...]`, which must succeed
    pub fn load(&self, source: &Path, extra: &[&str]) -> Run {
        let mut args = vec![
            std::ffi::OsString::from("load"),
            source.as_os_str().to_owned(),
        ];
        args.extend(extra.iter().map(std::ffi::OsString::from));
        self.ok(&args)
    }

    /// `lamina mount IMAGE [EXTRA...]`; the mountpoint it printed
    pub fn mount(&self, image: &str, extra: &[&str]) -> PathBuf {
        let mut args = vec!["mount", image];
        args.extend_from_slice(extra);
        let r = self.ok(&args);
        let line = r
            .stdout
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or_default()
            .to_string();
        let path = PathBuf::from(&line);
        // a writable copy-driver mount is a materialized tree, not necessarily a mount
        let copy_rw = extra.contains(&"copy") && !extra.contains(&"--read-only");
        assert!(
            path.is_absolute() && path.is_dir() && (copy_rw || is_mountpoint(&path)),
            "mount printed {line:?}, not a mountpoint: {}",
            r.describe()
        );
        path
    }

    pub fn umount(&self, what: &Path) {
        self.ok(&[std::ffi::OsStr::new("umount"), what.as_os_str()]);
        assert!(
            !is_mountpoint(what),
            "{} still mounted after lamina umount",
            what.display()
        );
    }

    /// paths below ROOT/tmp (staging); they must be gone once a command finished
    pub fn staging_leftovers(&self) -> Vec<String> {
        list_dir(&self.root.join("tmp"))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        unmount_below(&self.base);
        if let Err(e) = std::fs::remove_dir_all(&self.base) {
            skip(&format!("could not remove {}: {e}", self.base.display()));
        }
    }
}

pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Mount points at or below `dir` in this mount namespace, deepest first.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy().into_owned();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .map(PathBuf::from)
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v
}

/// The (fstype, options) of the mount at `path`, when one is there.
pub fn mount_info(path: &Path) -> Option<(String, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.to_string_lossy();
    // the last matching line is the mount on top
    info.lines()
        .rfind(|l| l.split(' ').nth(4).map(unescape_mountinfo).as_deref() == Some(&*want))
        .map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let sep = fields
                .iter()
                .position(|f| *f == "-")
                .unwrap_or(fields.len() - 1);
            let fstype = fields.get(sep + 1).copied().unwrap_or_default().to_string();
            let opts = format!(
                "{},{}",
                fields[5],
                fields.get(sep + 3).copied().unwrap_or_default()
            );
            (fstype, opts)
        })
}

pub fn is_mountpoint(path: &Path) -> bool {
    mount_info(path).is_some()
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

pub fn unmount_below(dir: &Path) {
    for _ in 0..3 {
        let mounts = mounts_below(dir);
        if mounts.is_empty() {
            return;
        }
        for m in mounts {
            let _ = rustix::mount::unmount(&m, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// A name no other test (or earlier run) uses.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `<12 hex>: Loading layer` / `Already exists` lines of a load, as (short id, what).
pub fn layer_lines(r: &Run) -> Vec<(String, String)> {
    r.lines()
        .iter()
        .filter_map(|l| {
            let (id, rest) = l.split_once(": ")?;
            let is_id = id.len() == 12
                && id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
            let what = if rest.starts_with("Loading layer") {
                "Loading layer"
            } else if rest.starts_with("Already exists") {
                "Already exists"
            } else {
                return None;
            };
            is_id.then(|| (id.to_string(), what.to_string()))
        })
        .fold(Vec::new(), |mut v, line| {
            // progress output repeats a line; count each layer once
            if !v.contains(&line) {
                v.push(line);
            }
            v
        })
}

/// The NAME:TAG of every `Loaded image: NAME:TAG` line.
pub fn loaded_images(r: &Run) -> Vec<String> {
    r.lines()
        .iter()
        .filter_map(|l| {
            l.strip_prefix("Loaded image: ")
                .map(|s| s.trim().to_string())
        })
        .collect()
}
