//! Fixtures of the registry tests: a distribution registry started by
//! ../shared/recipes/registry-up.sh on 127.0.0.1 (stopped on drop), pushes with skopeo, a throwaway
//! lamina store (the common `Store`) with its own docker config dir, and tree comparison of
//! mounted images with ../shared/tools/treemanifest.py.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::Store;
use lamina_testkit::env::{corpus_dir, is_root, on_path as have, shared_file, skip};

/// What every registry test needs; None (after a SKIP line) when something is missing.
pub struct Env {
    pub shared: PathBuf,
    pub corpus: PathBuf,
}

pub fn env() -> Option<Env> {
    let Some(shared) = shared_file("recipes/registry-up.sh") else {
        skip("registry tests: ../shared/recipes not found (set LAMINA_SHARED)");
        return None;
    };
    let corpus = corpus_dir();
    if !corpus.join("stamps/multiarch").exists() {
        skip("registry tests: corpus not built (LAMINA_CORPUS)");
        return None;
    }
    if !is_root() {
        skip("registry tests need root (unpacking devices, mounting)");
        return None;
    }
    for tool in ["skopeo", "docker-registry", "python3", "openssl", "curl"] {
        if !have(tool) {
            skip(&format!("registry tests: {tool} is not installed"));
            return None;
        }
    }
    Some(Env { shared, corpus })
}

/// A running registry; stopped (and its data removed) on drop.
pub struct Registry {
    dir: tempfile::TempDir,
    script_dir: PathBuf,
    flags: Vec<String>,
    pub port: u16,
    pub cacert: Option<PathBuf>,
    pid: u32,
}

impl Registry {
    /// `flags`: registry-up.sh's `--auth`, `--tls`, `--token`.
    pub fn start(env: &Env, flags: &[&str]) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("lamina-registry-")
            .tempdir()
            .expect("tempdir");
        let mut r = Registry {
            dir,
            script_dir: env.shared.join("recipes"),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            port: 0,
            cacert: None,
            pid: 0,
        };
        r.up(None);
        r
    }

    fn up(&mut self, port: Option<u16>) {
        let mut cmd = Command::new(self.script_dir.join("registry-up.sh"));
        cmd.arg(self.dir.path()).args(&self.flags);
        if let Some(p) = port {
            cmd.env("REGISTRY_PORT", p.to_string());
        }
        let out = cmd.output().expect("registry-up.sh runs");
        assert!(
            out.status.success(),
            "registry-up.sh failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(self.dir.path().join("env")).expect("DIR/env");
        for line in env.lines() {
            match line.split_once('=') {
                Some(("PORT", v)) => self.port = v.parse().expect("PORT"),
                Some(("PID", v)) => self.pid = v.parse().expect("PID"),
                Some(("CACERT", v)) => self.cacert = Some(PathBuf::from(v)),
                _ => {}
            }
        }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A directory holding the registry's CA as `ca.crt` (podman's --cert-dir layout).
    pub fn cert_dir(&self) -> PathBuf {
        let d = self.dir.path().join("certdir");
        std::fs::create_dir_all(&d).expect("certdir");
        let ca = self.cacert.as_ref().expect("registry started with --tls");
        std::fs::copy(ca, d.join("ca.crt")).expect("copy CA");
        d
    }

    /// `skopeo copy` of `src` (`oci:PATH:TAG`) to `REPO:TAG` on this registry.
    pub fn push(&self, src: &str, dest: &str, extra: &[&str]) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--dest-tls-verify=false"])
            .args(extra);
        if self.flags.iter().any(|f| f == "--auth" || f == "--token") {
            cmd.args(["--dest-creds", "lamina:lamina-pass"]);
        }
        let out = cmd
            .arg(src)
            .arg(format!("docker://{}/{dest}", self.host()))
            .output()
            .expect("skopeo runs");
        assert!(
            out.status.success(),
            "skopeo copy {src} {dest}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SIGKILL, as a crash: no goodbye to clients.
    pub fn kill(&self) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.pid as i32).expect("pid"),
            rustix::process::Signal::KILL,
        );
        let dead = Instant::now() + Duration::from_secs(5);
        while Instant::now() < dead {
            let stat =
                std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
            if stat.is_empty() || stat.split(' ').nth(2) == Some("Z") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(self.dir.path().join("registry.pid"));
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        let port = self.port;
        self.up(Some(port));
        assert_eq!(self.port, port);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = Command::new(self.script_dir.join("registry-down.sh"))
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .status();
    }
}

/// A throwaway store (the common `Store`), with its own docker config dir (never the user's
/// ~/.docker) and a clean registry environment; `ok` returns stdout, `fails` stderr.
pub struct Lamina {
    store: Store,
}

impl Lamina {
    pub fn new() -> Lamina {
        Lamina {
            store: Store::new("registry")
                .with_docker_config()
                .env_remove("LAMINA_INSECURE_REGISTRIES")
                .env_remove("LAMINA_CERTS_D")
                .env("LAMINA_RETRIES", "2"),
        }
    }

    pub fn env(self, k: &str, v: &str) -> Lamina {
        Lamina {
            store: self.store.env(k, v),
        }
    }

    /// The store root (`--root`).
    pub fn root(&self) -> &Path {
        self.store.root()
    }

    /// The store's own DOCKER_CONFIG dir.
    pub fn docker_config(&self) -> &Path {
        self.store.docker_config().expect("set by new")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.store.command();
        c.args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.store.output(args)
    }

    /// Runs, expects success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.store.ok(args).stdout
    }

    /// Runs, expects exit code 1, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        self.store.fails(args).stderr
    }

    /// `lamina images -q`: nothing half-pulled may show.
    pub fn image_ids(&self) -> Vec<String> {
        self.ok(&["images", "-q", "-a"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The tree of `image` mounted read-only, as treemanifest.py describes it (the root line,
    /// whose metadata belongs to the mount, left out).
    pub fn tree(&self, env: &Env, image: &str) -> String {
        let target = tempfile::tempdir().expect("tempdir");
        let t = target.path().to_str().expect("utf-8 temp path").to_string();
        self.ok(&["mount", "--read-only", "--target", &t, image]);
        let out = Command::new("python3")
            .arg(env.shared.join("tools/treemanifest.py"))
            .arg(&t)
            .output();
        let _ = self.run(&["umount", &t]);
        let out = out.expect("treemanifest.py runs");
        assert!(
            out.status.success(),
            "treemanifest: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("/ "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Starts `lamina ARGS` and returns once a stdout line satisfies `until`, with the child
    /// still running and the lines read so far; the rest of stdout is collected by `finish`.
    pub fn spawn_until(&self, args: &[&str], until: impl Fn(&str) -> bool) -> Running {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lamina starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(600);
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let hit = until(&line);
                    lines.push(line);
                    if hit {
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        Running {
            child,
            lines,
            rx,
            reader: Some(reader),
        }
    }
}

pub struct Running {
    child: Child,
    pub lines: Vec<String>,
    rx: std::sync::mpsc::Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Waits for the process; returns (success, all stdout lines, stderr).
    pub fn finish(mut self) -> (bool, Vec<String>, String) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.lines.extend(self.rx.try_iter());
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        (ok, self.lines, stderr)
    }
}

pub fn count(lines: &[String], suffix: &str) -> usize {
    lines.iter().filter(|l| l.ends_with(suffix)).count()
}

pub fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// A TCP proxy in front of a registry that cuts one connection, once, after it has carried
/// `cut_after` bytes of responses: a registry whose connection drops in the middle of a blob.
/// Everything else passes through untouched.
pub struct CuttingProxy {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CuttingProxy {
    pub fn start(upstream_port: u16, cut_after: u64) -> CuttingProxy {
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listens");
        let port = listener.local_addr().expect("proxy addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let has_cut = cut.clone();
        // The accept loop lives as long as the test process; each connection as long as its peers.
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                let (mut c_in, mut u_out) = (
                    client.try_clone().expect("clone"),
                    upstream.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut u_out);
                    let _ = u_out.shutdown(Shutdown::Write);
                });
                let cut = cut.clone();
                std::thread::spawn(move || {
                    let (mut up, mut down) = (upstream, client);
                    let mut carried = 0u64;
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match std::io::Read::read(&mut up, &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if down.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        carried += n as u64;
                        if carried >= cut_after && !cut.swap(true, Ordering::SeqCst) {
                            let _ = down.shutdown(Shutdown::Both);
                            let _ = up.shutdown(Shutdown::Both);
                            return;
                        }
                    }
                    let _ = down.shutdown(Shutdown::Write);
                });
            }
        });
        CuttingProxy { port, cut: has_cut }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn has_cut(&self) -> bool {
        self.cut.load(std::sync::atomic::Ordering::SeqCst)
    }
}
