use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn concurrent_callers_all_return_after_a_flush_that_started_after_them() {
    let tmp = tempfile::tempdir().unwrap();
    let group = SyncGroup::new();
    let done = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..5 {
                    group.sync(tmp.path()).unwrap();
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(done.load(Ordering::SeqCst), 40);
    let st = group.lock();
    assert!(!st.running);
    // Shared flushes: never more than one per call, usually far fewer.
    assert!(st.finished <= 40 && st.finished == st.started);
}

#[test]
fn a_failed_flush_fails_every_later_caller() {
    let group = SyncGroup::new();
    assert!(group.sync(Path::new("/nonexistent/lamina-test")).is_err());
    let tmp = tempfile::tempdir().unwrap();
    assert!(group.sync(tmp.path()).is_err());
}
