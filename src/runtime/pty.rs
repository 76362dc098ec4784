//! The container's terminal (`run -t`): the runtime's `--console-socket` protocol, and the copying
//! between the pty master and lamina's own stdin/stdout.
//!
//! With `process.terminal` set, the runtime makes a pty inside the container, connects to the unix
//! socket named by `--console-socket`, and sends the master over it as SCM_RIGHTS (runc's
//! `utils.SendFd`, crun's `send_fd_to_socket`). What the container writes is read from the master and
//! written to our stdout; with `-i` our stdin goes to the master, after our terminal (when stdin is
//! one) is put into raw mode so that ^C and ^Z reach the container's line discipline instead of us.

use std::fs;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use rustix::termios::{self, OptionalActions, Termios};

use super::RuntimeError;

/// How long the runtime may take to hand over the master once `create` succeeded.
const MASTER_WAIT: Duration = Duration::from_secs(10);
/// How often a pump looks at its stop flag while there is nothing to read.
const POLL_INTERVAL_MS: i64 = 100;

/// The listening socket a runtime sends the pty master to; removed on drop.
pub struct ConsoleSocket {
    listener: UnixListener,
    pub path: PathBuf,
}

impl ConsoleSocket {
    /// Listens on a fresh socket in the temp dir (a socket path is limited to 107 bytes, which a
    /// store root's bundle path may exceed).
    pub fn bind() -> Result<ConsoleSocket, RuntimeError> {
        let path = std::env::temp_dir().join(format!(
            "lamina-console-{}-{:08x}.sock",
            std::process::id(),
            rand::random::<u32>()
        ));
        let console = |source| RuntimeError::Console {
            what: "listening on the console socket",
            source,
        };
        let listener = UnixListener::bind(&path).map_err(console)?;
        listener.set_nonblocking(true).map_err(console)?;
        Ok(ConsoleSocket { listener, path })
    }

    /// The pty master the runtime sent.
    pub fn receive_master(&self) -> Result<OwnedFd, RuntimeError> {
        let console = |source| RuntimeError::Console {
            what: "receiving the pty master",
            source,
        };
        let start = Instant::now();
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock && start.elapsed() < MASTER_WAIT =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(console(e)),
            }
        };
        stream.set_nonblocking(false).map_err(console)?;
        // The runtime sends the pty's name as the payload and the master as the one fd.
        let mut name = [0u8; 4096];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        rustix::net::recvmsg(
            &stream,
            &mut [io::IoSliceMut::new(&mut name)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(|e| console(e.into()))?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = message {
                if let Some(fd) = fds.next() {
                    return Ok(fd);
                }
            }
        }
        Err(console(io::Error::other(
            "the runtime sent no file descriptor",
        )))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Our terminal in raw mode until dropped (then as it was).
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Raw mode on stdin when it is a terminal; `None` otherwise.
    pub fn stdin() -> Option<RawMode> {
        let stdin = io::stdin();
        if !termios::isatty(&stdin) {
            return None;
        }
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Gives the container's terminal the size of ours (stdout's, else stdin's), if we have one.
pub fn copy_window_size(master: BorrowedFd<'_>) {
    let size = termios::tcgetwinsize(io::stdout()).or_else(|_| termios::tcgetwinsize(io::stdin()));
    if let Ok(size) = size {
        let _ = termios::tcsetwinsize(master, size);
    }
}

/// Copies `from` to `to` on a thread until `from` ends (EOF, or EIO: a pty master whose last slave
/// closed) or, once `stop` is set, until nothing more arrives within a poll interval.
pub fn pump<F, W>(from: F, mut to: W, stop: Arc<AtomicBool>) -> io::Result<JoinHandle<()>>
where
    F: AsFd + Read + Send + 'static,
    W: Write + Send + 'static,
{
    std::thread::Builder::new()
        .name("lamina-pump".into())
        .spawn(move || {
            let mut from = from;
            let mut buf = vec![0u8; 32 * 1024];
            let timeout = Timespec {
                tv_sec: 0,
                tv_nsec: POLL_INTERVAL_MS * 1_000_000,
            };
            loop {
                let mut fds = [PollFd::new(&from, PollFlags::IN)];
                match poll(&mut fds, Some(&timeout)) {
                    Ok(0) if stop.load(Ordering::Acquire) => return,
                    Ok(0) => continue,
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(_) => return,
                }
                match from.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).and_then(|_| to.flush()).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
        })
}

/// Copies our stdin to the container's terminal on a thread that ends at EOF. It is not joined: a
/// read of a terminal blocks until a key is pressed, and the run is over by then.
pub fn forward_stdin(master: fs::File) -> io::Result<()> {
    std::thread::Builder::new()
        .name("lamina-stdin".into())
        .spawn(move || {
            let mut master = master;
            let _ = io::copy(&mut io::stdin().lock(), &mut master);
        })
        .map(|_| ())
}
