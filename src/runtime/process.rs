//! Running a bundle in the foreground, as a shim does: `RUNTIME create`, then `RUNTIME start`, then
//! wait for the container's first process and return its exit code.
//!
//! lamina makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so the container's first
//! process, orphaned when `create` exits, becomes our child: we wait for it directly (its exit code,
//! or 128 + the signal that killed it, as docker reports) and signal it directly (see
//! [`SignalForwarder`]). Without `-t` the container gets our stdout and, with `-i`, our stdin as they
//! are (the runtime passes its own stdio through). Its stderr is a pipe we copy to ours: what the
//! runtime itself writes there before the container exists is held back, so that a failure is
//! reported once, as lamina's one line, with docker's exit code for a command that cannot be run.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rustix::process::{Pid, WaitId, WaitIdOptions};

use super::oci_runtime::{exec_failure_code, runtime_message, OciRuntime};
use super::pty::{self, ConsoleSocket, RawMode};
use super::signals::SignalForwarder;
use super::RuntimeError;

/// How the container's stdio is connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerStdio {
    /// `-i`: our stdin is the container's (else it reads /dev/null).
    pub interactive: bool,
    /// `-t`: the container has a terminal (the bundle must say `process.terminal: true`).
    pub terminal: bool,
}

/// The file `create --pid-file` writes, beside config.json.
const PID_FILE: &str = "container.pid";

/// Runs the bundle at `bundle` as container `id` and returns its exit code. The caller deletes the
/// runtime's state afterwards ([`OciRuntime::delete`]) whatever happened.
pub fn run_container(
    rt: &OciRuntime,
    bundle: &Path,
    id: &str,
    stdio: ContainerStdio,
    signals: &SignalForwarder,
) -> Result<i32, RuntimeError> {
    if let Some(signal) = signals.early_stop() {
        return Err(RuntimeError::Interrupted { signal });
    }
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| RuntimeError::Wait(e.into()))?;
    fs::create_dir_all(&rt.state_root).map_err(|source| RuntimeError::StateDir {
        path: rt.state_root.clone(),
        source,
    })?;
    let console = stdio.terminal.then(ConsoleSocket::bind).transpose()?;
    let pid_file = bundle.join(PID_FILE);
    let _ = fs::remove_file(&pid_file);

    let (relay_out, relay_in) = io::pipe().map_err(|e| rt.spawn_error(e))?;
    let relay = Relay::start(relay_out).map_err(|e| rt.spawn_error(e))?;
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "create".as_ref(),
        "--bundle".as_ref(),
        bundle.as_os_str(),
        "--pid-file".as_ref(),
        pid_file.as_os_str(),
    ];
    if let Some(c) = &console {
        args.extend(["--console-socket".as_ref(), c.path.as_os_str()]);
    }
    args.push(id.as_ref());
    let mut create = rt.command(&args);
    create.stderr(relay_in);
    if !stdio.terminal {
        create.stdout(Stdio::inherit());
        if stdio.interactive {
            create.stdin(Stdio::inherit());
        }
    }
    let status = create
        .spawn()
        .and_then(|mut child: Child| child.wait())
        .map_err(|e| rt.spawn_error(e));
    drop(create); // our copy of the pipe's write end: the container holds the others
    if !status?.success() {
        let message = runtime_message(&relay.finish());
        return Err(failure(rt, "create", message));
    }
    relay.pass_through();

    let pid = read_pid(&pid_file)?;
    signals.forward_to(pid);
    if let Some(signal) = signals.early_stop() {
        return Err(RuntimeError::Interrupted { signal });
    }
    let terminal = match &console {
        Some(c) => Some(Terminal::attach(
            c.receive_master()?,
            stdio.interactive,
            signals,
        )?),
        None => None,
    };

    let start = rt
        .command(&["start".as_ref(), id.as_ref()])
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| rt.spawn_error(e))?;
    if !start.status.success() {
        let message = runtime_message(&String::from_utf8_lossy(&start.stderr));
        return Err(failure(rt, "start", message));
    }
    let code = wait_exit(pid, signals);
    if let Some(t) = terminal {
        t.finish();
    }
    relay.finish();
    code
}

/// A failed create or start: docker's 126/127 when the command could not be run, else the
/// runtime's own error.
fn failure(rt: &OciRuntime, action: &'static str, message: String) -> RuntimeError {
    match exec_failure_code(&message) {
        Some(code) => RuntimeError::Exec { code, message },
        None => RuntimeError::Runtime {
            runtime: rt.flavor.name(),
            action,
            message,
        },
    }
}

fn read_pid(path: &Path) -> Result<Pid, RuntimeError> {
    let text = fs::read_to_string(path).map_err(|source| RuntimeError::PidFile {
        path: path.to_path_buf(),
        source,
    })?;
    text.trim()
        .parse::<i32>()
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| RuntimeError::PidFile {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidData, format!("{text:?} is not a pid")),
        })
}

/// Waits for our child `pid` to exit; stops forwarding signals to it before reaping it.
fn wait_exit(pid: Pid, signals: &SignalForwarder) -> Result<i32, RuntimeError> {
    let wait = |options| loop {
        match rustix::process::waitid(WaitId::Pid(pid), options) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(|e| RuntimeError::Wait(e.into())),
        }
    };
    wait(WaitIdOptions::EXITED | WaitIdOptions::NOWAIT)?;
    signals.target_exited();
    let status = wait(WaitIdOptions::EXITED)?
        .ok_or_else(|| RuntimeError::Wait(io::Error::other("waitid returned no status")))?;
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => Ok(code),
        (None, Some(signal)) => Ok(128 + signal),
        (None, None) => Err(RuntimeError::Wait(io::Error::other(
            "the container neither exited nor was killed",
        ))),
    }
}

/// The container's terminal, attached to ours.
struct Terminal {
    _raw: Option<RawMode>,
    output: JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

impl Terminal {
    fn attach(
        master: std::os::fd::OwnedFd,
        interactive: bool,
        signals: &SignalForwarder,
    ) -> Result<Terminal, RuntimeError> {
        let console = |source| RuntimeError::Console {
            what: "copying the container's terminal",
            source,
        };
        let master = File::from(master);
        pty::copy_window_size(std::os::fd::AsFd::as_fd(&master));
        let resize = master.try_clone().map_err(console)?;
        signals.on_resize(Box::new(move || {
            pty::copy_window_size(std::os::fd::AsFd::as_fd(&resize))
        }));
        let raw = if interactive {
            pty::forward_stdin(master.try_clone().map_err(console)?).map_err(console)?;
            RawMode::stdin()
        } else {
            None
        };
        let stop = Arc::new(AtomicBool::new(false));
        let output = pty::pump(master, io::stdout(), stop.clone()).map_err(console)?;
        Ok(Terminal {
            _raw: raw,
            output,
            stop,
        })
    }

    /// The container has exited: copy what is left in the master, then give our terminal back.
    fn finish(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.output.join();
    }
}

/// The container's stderr, copied to ours; held back while only the runtime writes to it.
struct Relay {
    state: Arc<Mutex<RelayState>>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

#[derive(Default)]
struct RelayState {
    passing: bool,
    held: Vec<u8>,
}

/// The writer end of the relay: into the held buffer, or to our stderr once passing.
struct RelaySink(Arc<Mutex<RelayState>>);

impl Write for RelaySink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if st.passing {
            io::stderr().write_all(buf)?;
        } else {
            st.held.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl Relay {
    fn start(from: io::PipeReader) -> io::Result<Relay> {
        let state = Arc::new(Mutex::new(RelayState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = pty::pump(from, RelaySink(state.clone()), stop.clone())?;
        Ok(Relay {
            state,
            stop,
            thread,
        })
    }

    /// From now on the container writes: what was held back (runtime warnings) goes out first.
    fn pass_through(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let _ = io::stderr().write_all(&st.held);
        st.held.clear();
        st.passing = true;
    }

    /// Waits for the pipe to go quiet and returns what was held back.
    fn finish(self) -> String {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&st.held).into_owned()
    }
}
