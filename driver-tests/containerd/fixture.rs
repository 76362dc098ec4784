//! A `lamina snapshotter` process on a store of its own, and a private Debian containerd 1.6 whose
//! `[proxy_plugins.lamina]` points at it (root, state, sockets and logs under the store's scratch
//! space, as ../shared/recipes/containerd-up.sh lays them out). Drop stops containerd with the
//! recipe's containerd-down.sh (tasks, shims, runc state, mounts, cgroups), then the snapshotter,
//! then the store removes itself: a failing test leaves nothing running or mounted.

use super::mounts::{mount_all, parse_ctr_mounts, unmount_all};
use crate::common::{self, Run, Store};
use lamina_testkit::tree::{self, Manifest};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The containerd namespace the tests use (their own, not `default`: other daemons share runc's
/// and ctr's default dirs on this machine).
pub const NS: &str = "lamina-test";

/// How long one ctr command may take (a 500-layer import is the longest).
const CTR_LIMIT: Duration = Duration::from_secs(300);

/// ../shared/recipes, containerd and ctr; None (after a SKIP line) when something is missing.
/// What a test of containerd pulling from the local registry needs: the recipes, the test images
/// and the registry's environment, with umoci as the oracle; `None` (the test skips, saying why)
/// when any is missing.
pub fn registry_setup() -> Option<(PathBuf, PathBuf, crate::registry::fixture::Env)> {
    let recipes = recipes()?;
    let images = common::test_images()?;
    let env = crate::registry::fixture::env()?;
    common::have_tool("umoci").then_some((recipes, images, env))
}

pub fn recipes() -> Option<PathBuf> {
    if !common::require_root() {
        return None;
    }
    for tool in ["containerd", "ctr", "runc"] {
        if !lamina_testkit::env::on_path(tool) {
            common::skip(&format!(
                "containerd tests: {tool} is not installed (scripts/install-deps.sh)"
            ));
            return None;
        }
    }
    let rel = "recipes/containerd-down.sh";
    let Some(shared) = lamina_testkit::env::shared_file(rel) else {
        common::skip("containerd tests: ../shared/recipes not found (set LAMINA_SHARED)");
        return None;
    };
    Some(shared.join("recipes"))
}

/// `lamina snapshotter --address SOCK` on a store; SIGTERM (then SIGKILL) on drop.
pub struct Snapshotter {
    child: Child,
    pub socket: PathBuf,
    log: PathBuf,
}

impl Snapshotter {
    pub fn start(store: &Store) -> Snapshotter {
        Snapshotter::start_full(store, &[], "info")
    }

    /// `lamina snapshotter --address SOCK EXTRA...`.
    pub fn start_with(store: &Store, extra: &[&str]) -> Snapshotter {
        Snapshotter::start_full(store, extra, "info")
    }

    /// `start` with `LAMINA_LOG=filter` (`info,lamina::snapshotter=debug` also logs the end of
    /// every RPC the engine served).
    pub fn start_logging(store: &Store, filter: &str) -> Snapshotter {
        Snapshotter::start_full(store, &[], filter)
    }

    fn start_full(store: &Store, extra: &[&str], filter: &str) -> Snapshotter {
        let socket = store.base.join("lamina.sock");
        let log = store.base.join("snapshotter.log");
        let out = std::fs::File::create(&log).expect("snapshotter log");
        let err = out.try_clone().expect("log fd");
        let child = store
            .command()
            .arg("snapshotter")
            .arg("--address")
            .arg(&socket)
            .args(extra)
            .env("LAMINA_LOG", filter)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("lamina snapshotter starts");
        let mut s = Snapshotter { child, socket, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&s.socket).is_err() {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("lamina snapshotter exited with {status}:\n{}", s.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "lamina snapshotter did not listen on {} within 20 s:\n{}",
                s.socket.display(),
                s.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log file (stdout and stderr), started anew by every `start`.
    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    /// SIGKILL, as a crash: the socket file stays behind.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// How many lines of the log carry `what` (e.g. `"commit"` for the RPCs served).
    pub fn logged(&self, what: &str) -> usize {
        self.log_text().lines().filter(|l| l.contains(what)).count()
    }
}

impl Drop for Snapshotter {
    fn drop(&mut self) {
        // one `kill` reaped already: its pid may be another process's by now
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the private containerd is configured with besides the proxy snapshotter.
#[derive(Default)]
pub struct Options {
    /// Turn the CRI plugin on (namespace `k8s.io`, default snapshotter `lamina`), with this
    /// `127.0.0.1:PORT` registry reachable over plain HTTP.
    pub cri_registry: Option<String>,
    /// Let the snapshotter fetch the layers of a labelled (CRI) pull itself, the fast pull; off,
    /// it runs with `--no-fetch` and containerd applies what lamina does not hold.
    pub fetch_layers: bool,
    /// User and password CRI sends to `cri_registry` (kubelet's pull secrets reach containerd,
    /// never the snapshotter).
    pub cri_auth: Option<(String, String)>,
}

/// A private containerd using `lamina` as a proxy snapshotter, with the snapshotter's store.
/// Fields drop in order: the snapshotter after containerd (Drop below), the store last.
pub struct Containerd {
    recipes: PathBuf,
    pub dir: PathBuf,
    pub snapshotter: Snapshotter,
    pub store: Store,
}

impl Containerd {
    /// Starts the snapshotter on `store`, then containerd.
    pub fn start(recipes: PathBuf, store: Store, options: Options) -> Containerd {
        let extra: &[&str] = if options.fetch_layers {
            &[]
        } else {
            &["--no-fetch"]
        };
        let snapshotter = Snapshotter::start_with(&store, extra);
        let dir = store.scratch("ctrd");
        let c = Containerd {
            recipes,
            dir,
            snapshotter,
            store,
        };
        c.write_config(&options);
        c.spawn_daemon();
        c
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    fn write_config(&self, options: &Options) {
        let d = self.dir.display();
        for sub in [
            "root", "state", "tmp", "opt", "runc", "fifo", "log", "cni/bin", "cni/conf",
        ] {
            std::fs::create_dir_all(self.dir.join(sub)).expect("containerd dirs");
        }
        let mut disabled = vec![
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.snapshotter.v1.devmapper",
        ];
        if options.cri_registry.is_none() {
            disabled.push("io.containerd.grpc.v1.cri");
        }
        let disabled: Vec<String> = disabled.iter().map(|p| format!("{p:?}")).collect();
        let mut config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
temp = "{d}/tmp"
disabled_plugins = [{disabled}]

[grpc]
  address = "{d}/containerd.sock"
  tcp_address = ""

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[proxy_plugins.lamina]
  type = "snapshot"
  address = "{sock}"
"#,
            disabled = disabled.join(", "),
            sock = self.snapshotter.socket.display(),
        );
        if let Some(host) = &options.cri_registry {
            // As ../shared/recipes/cri-pod/cri-up.sh, plus the local registry over plain HTTP.
            config.push_str(&format!(
                r#"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/library/pause:local"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "lamina"
    disable_snapshot_annotations = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{host}"]
    endpoint = ["http://{host}"]
"#
            ));
            if let Some((user, pass)) = &options.cri_auth {
                config.push_str(&format!(
                    r#"  [plugins."io.containerd.grpc.v1.cri".registry.configs."{host}".auth]
    username = "{user}"
    password = "{pass}"
"#
                ));
            }
        }
        std::fs::write(self.dir.join("config.toml"), config).expect("config.toml");
    }

    fn spawn_daemon(&self) {
        let log = std::fs::File::create(self.dir.join("containerd.log")).expect("containerd.log");
        let err = log.try_clone().expect("log fd");
        // its own process group: a ^C of the test run reaches it through Drop, not the terminal
        let child = Command::new("containerd")
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .spawn()
            .expect("containerd starts");
        // containerd-down.sh stops the daemon by this pid file (and reaps nothing: the child is
        // ours, so a thread waits for it to keep it from staying a zombie)
        std::fs::write(self.dir.join("containerd.pid"), child.id().to_string()).expect("pid");
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.ctr_raw(&["version"], Duration::from_secs(10));
            if r.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not come up:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    fn ctr_raw(&self, args: &[&str], limit: Duration) -> Run {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address").arg(self.socket()).args(args);
        common::run(&mut cmd, limit)
    }

    /// `ctr -n NAMESPACE ARGS...`, whatever its exit code.
    pub fn ctr_in(&self, namespace: &str, args: &[&str]) -> Run {
        let mut all = vec!["-n", namespace];
        all.extend_from_slice(args);
        self.ctr_raw(&all, CTR_LIMIT)
    }

    /// `ctr -n lamina-test ARGS...`, which must succeed.
    pub fn ctr(&self, args: &[&str]) -> Run {
        let r = self.ctr_in(NS, args);
        assert!(
            r.success(),
            "{}\n--- snapshotter log (tail) ---\n{}",
            r.describe(),
            tail(&self.snapshotter.log_text(), 30)
        );
        r
    }

    /// `ctr images import --snapshotter lamina ARCHIVE` in the test namespace, which must succeed:
    /// how long it took.
    pub fn import(&self, archive: &std::path::Path) -> Duration {
        let started = Instant::now();
        self.ctr(&[
            "images",
            "import",
            "--snapshotter",
            "lamina",
            archive.to_str().expect("utf-8"),
        ]);
        started.elapsed()
    }

    /// `ctr run --rm --snapshotter lamina [EXTRA...] IMAGE ID ARGS...` in `namespace`, whatever
    /// its exit code.
    pub fn try_run_in(&self, namespace: &str, extra: &[&str], image: &str, args: &[&str]) -> Run {
        let all = self.run_args(extra, image, args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        self.ctr_in(namespace, &all)
    }

    /// The arguments of `ctr run --rm --snapshotter lamina [EXTRA...] IMAGE ID ARGS...` (a new
    /// container ID, runc's state and the fifos under this containerd's dir).
    pub fn run_args(&self, extra: &[&str], image: &str, args: &[&str]) -> Vec<String> {
        let runc_root = self.dir.join("runc").display().to_string();
        let fifo = self.dir.join("fifo").display().to_string();
        let mut all: Vec<String> = ["run", "--rm", "--snapshotter", "lamina", "--runc-root"]
            .map(String::from)
            .to_vec();
        all.extend([runc_root, "--fifo-dir".into(), fifo]);
        all.extend(extra.iter().map(|s| s.to_string()));
        all.push(image.to_string());
        all.push(common::unique("c"));
        all.extend(args.iter().map(|s| s.to_string()));
        all
    }

    /// `ctr -n NAMESPACE ARGS...` not yet started, for a test that runs it beside something else.
    pub fn ctr_command(&self, namespace: &str, args: &[String]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(self.socket())
            .args(["-n", namespace])
            .args(args);
        cmd
    }

    /// `try_run_in`, which must succeed: its stdout.
    pub fn run_in(&self, namespace: &str, extra: &[&str], image: &str, args: &[&str]) -> String {
        let r = self.try_run_in(namespace, extra, image, args);
        assert!(
            r.success(),
            "{}\n--- snapshotter log (tail) ---\n{}",
            r.describe(),
            tail(&self.snapshotter.log_text(), 30)
        );
        r.stdout
    }

    pub fn run(&self, image: &str, args: &[&str]) -> String {
        self.run_in(NS, &[], image, args)
    }

    /// containerd's snapshots in lamina: (key, parent, kind) of `ctr snapshots ls`.
    pub fn snapshots_in(&self, namespace: &str) -> Vec<(String, String, String)> {
        let r = self.ctr_in(namespace, &["snapshots", "--snapshotter", "lamina", "ls"]);
        assert!(r.success(), "{}", r.describe());
        r.stdout
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                match f.as_slice() {
                    [key, kind] => Some((key.to_string(), String::new(), kind.to_string())),
                    [key, parent, kind] => {
                        Some((key.to_string(), parent.to_string(), kind.to_string()))
                    }
                    _ => None,
                }
            })
            .collect()
    }

    /// The committed snapshot no other committed snapshot has for parent: the top of the one
    /// image chain in `namespace`.
    pub fn top_of_chain(&self, namespace: &str) -> String {
        let snaps = self.snapshots_in(namespace);
        let committed: Vec<&(String, String, String)> =
            snaps.iter().filter(|s| s.2 == "Committed").collect();
        let tops: Vec<&String> = committed
            .iter()
            .map(|s| &s.0)
            .filter(|k| !committed.iter().any(|s| &s.1 == *k))
            .collect();
        assert_eq!(tops.len(), 1, "one chain expected: {snaps:?}");
        tops[0].clone()
    }

    /// The tree of committed snapshot `name` through a view containerd asks lamina for
    /// (`ctr snapshots view --mounts`), mounted here as containerd's mount code would.
    pub fn view_tree(&self, namespace: &str, name: &str) -> Manifest {
        let key = common::unique("view-");
        let r = self.ctr_in(
            namespace,
            &[
                "snapshots",
                "--snapshotter",
                "lamina",
                "view",
                "--mounts",
                &key,
                name,
            ],
        );
        assert!(r.success(), "{}", r.describe());
        let mounts = parse_ctr_mounts(&r.stdout);
        let target = self.store.scratch(&key);
        mount_all(&mounts, &target);
        let m = tree::treemanifest(&target);
        unmount_all(&target);
        self.ctr_in(
            namespace,
            &["snapshots", "--snapshotter", "lamina", "rm", &key],
        );
        m
    }

    /// Layer dirs in lamina's store.
    pub fn layers(&self) -> Vec<String> {
        common::list_dir(&self.store.root.join("layers"))
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = Command::new(self.recipes.join("containerd-down.sh"))
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
