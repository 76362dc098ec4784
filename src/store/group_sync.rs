//! Group commit for `syncfs`: committers that finish close together share one flush.
//!
//! A deep image stores hundreds of small layers, each of which must be on disk before it is renamed
//! into place. One `syncfs` per layer made the load wait for the disk hundreds of times in a row;
//! here a caller's data is on disk once a `syncfs` that *started after it asked* has finished, so
//! while one flush runs the layers staged meanwhile gather for the next, and each wait covers all
//! of them. The guarantee per caller is the same as its own `syncfs`.

use std::io;
use std::path::Path;
use std::sync::{Condvar, Mutex};

#[derive(Default)]
pub struct SyncGroup {
    state: Mutex<State>,
    finished_one: Condvar,
}

#[derive(Default)]
struct State {
    /// Flushes started so far; the one running (if any) is number `started`.
    started: u64,
    /// The number of the last flush that finished.
    finished: u64,
    running: bool,
    /// A failed flush: every caller from then on fails (a lost write stays lost).
    failed: Option<(io::ErrorKind, String)>,
}

impl SyncGroup {
    pub fn new() -> SyncGroup {
        SyncGroup::default()
    }

    /// Returns once everything written on `path`'s filesystem before this call is on disk.
    pub fn sync(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        // A flush running now may have started before our writes: the next one is ours.
        let needed = st.started + 1;
        loop {
            if let Some((kind, msg)) = &st.failed {
                return Err(io::Error::new(*kind, format!("syncfs: {msg}")));
            }
            if st.finished >= needed {
                return Ok(());
            }
            if st.running {
                st = self
                    .finished_one
                    .wait(st)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            }
            st.running = true;
            st.started += 1;
            let number = st.started;
            drop(st);
            let result = super::staging::sync_filesystem(path);
            st = self.lock();
            st.running = false;
            st.finished = number;
            if let Err(e) = result {
                st.failed = Some((e.kind(), e.to_string()));
            }
            self.finished_one.notify_all();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
#[path = "group_sync_tests.rs"]
mod tests;
