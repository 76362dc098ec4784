//! Forwarding the signals lamina receives to the container's first process, as `docker run`'s
//! signal proxy does.
//!
//! The handlers are installed before anything is mounted, so an interrupt that comes early is not
//! lost: it is remembered, and the run stops before the container starts (and cleans up). Once the
//! container's pid is known every forwarded signal goes to it; a pid is only signalled while it is
//! known not to be reaped yet (the waiter calls [`SignalForwarder::target_exited`] before reaping), so
//! a reused pid is never hit. A container's pid 1 ignores signals it has no handler for (the kernel's
//! rule for a pid namespace's init), so the third SIGINT/SIGTERM is followed by SIGKILL: an
//! impatient user can always stop the container.

use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rustix::process::{Pid, Signal};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
use signal_hook::iterator::{Handle, Signals};

use super::RuntimeError;

/// Signals passed on to the container.
const FORWARDED: [i32; 6] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];
/// Signals that ask the run to end: when one comes before the container started, it is not started.
const STOPPING: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];
/// How many SIGINT/SIGTERM are forwarded before the container is killed.
const PATIENCE: u32 = 3;

type ResizeHook = Box<dyn Fn() + Send>;

#[derive(Default)]
struct State {
    target: Option<Pid>,
    /// The first stopping signal that came while there was no target.
    early_stop: Option<i32>,
    interrupts: u32,
    on_resize: Option<ResizeHook>,
}

/// Catches the forwarded signals (and SIGWINCH) for as long as it lives.
pub struct SignalForwarder {
    state: Arc<Mutex<State>>,
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl SignalForwarder {
    pub fn install() -> Result<SignalForwarder, RuntimeError> {
        let mut caught = FORWARDED.to_vec();
        caught.push(SIGWINCH);
        let mut signals = Signals::new(&caught).map_err(RuntimeError::Signals)?;
        let handle = signals.handle();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("lamina-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    deliver(&shared, signal);
                }
            })
            .map_err(RuntimeError::Signals)?;
        Ok(SignalForwarder {
            state,
            handle,
            thread: Some(thread),
        })
    }

    /// The stopping signal that came before there was a container to forward it to.
    pub fn early_stop(&self) -> Option<i32> {
        lock(&self.state).early_stop
    }

    /// From now on, signals go to `pid`.
    pub fn forward_to(&self, pid: Pid) {
        let mut st = lock(&self.state);
        st.target = Some(pid);
        st.interrupts = 0;
    }

    /// The target has exited (and is about to be reaped): nothing more is sent to it.
    pub fn target_exited(&self) {
        lock(&self.state).target = None;
    }

    /// Runs `hook` on every SIGWINCH (the terminal was resized).
    pub fn on_resize(&self, hook: ResizeHook) {
        lock(&self.state).on_resize = Some(hook);
    }
}

impl Drop for SignalForwarder {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn deliver(state: &Mutex<State>, signal: i32) {
    let mut st = lock(state);
    if signal == SIGWINCH {
        if let Some(hook) = &st.on_resize {
            hook();
        }
        return;
    }
    let Some(pid) = st.target else {
        if STOPPING.contains(&signal) && st.early_stop.is_none() {
            st.early_stop = Some(signal);
        }
        return;
    };
    if let Some(sig) = Signal::from_named_raw(signal) {
        // The target may have just exited; it is not reaped while we hold the lock, so the pid is
        // still its own and ESRCH is the worst that happens.
        let _ = rustix::process::kill_process(pid, sig);
    }
    if signal == SIGINT || signal == SIGTERM {
        st.interrupts += 1;
        if st.interrupts >= PATIENCE {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
    }
}

#[cfg(test)]
#[path = "signals_tests.rs"]
mod tests;
