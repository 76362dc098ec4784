use super::*;

#[test]
fn abandoned_staging_is_cleared_and_live_staging_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let live = Staging::new(tmp.path(), "live").unwrap();
    fs::write(live.path().join("f"), b"x").unwrap();
    // An abandoned one: a dir and a lock file nobody holds.
    fs::create_dir(tmp.path().join("dead-1")).unwrap();
    fs::write(tmp.path().join("dead-1.lock"), b"").unwrap();
    fs::create_dir(tmp.path().join("dead-2")).unwrap();
    assert_eq!(clear_abandoned(tmp.path()).unwrap(), 2);
    assert!(live.path().join("f").exists());
    assert!(!tmp.path().join("dead-1").exists());
    drop(live);
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn commit_refuses_to_replace_finished_work() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("first"), b"").unwrap();
    let s = Staging::new(tmp.path(), "x").unwrap();
    fs::write(s.path().join("second"), b"").unwrap();
    assert!(!s.commit_to(&dest).unwrap());
    assert!(dest.join("first").exists());
    assert!(!dest.join("second").exists());
}
