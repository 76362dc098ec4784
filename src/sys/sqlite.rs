//! The two SQLite C calls rusqlite has no safe method for: keeping the WAL files after the last
//! connection closes, and reading the errno of the system call that made the last call fail.

use rusqlite::{ffi, Connection};

/// `sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, 1)`: the `-wal` and `-shm` files stay
/// when the last connection closes (it checkpoints, but neither deletes nor truncates them), so a
/// later process needs no new inode or block to open the database: read-only commands work on a
/// filesystem that is full or out of inodes, and a writer overwrites the WAL's existing blocks.
///
/// # References
/// - [SQLITE_FCNTL_PERSIST_WAL](https://www.sqlite.org/c3ref/c_fcntl_begin_atomic_write.html#sqlitefcntlpersistwal)
pub fn persist_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mut on: std::os::raw::c_int = 1;
    // SAFETY: the handle is the connection's own, valid while `conn` is borrowed; "main" is a
    // NUL-terminated literal; PERSIST_WAL reads and writes one int through the pointer, which
    // points at `on` for the whole call.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut on as *mut std::os::raw::c_int).cast(),
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None))
    }
}

/// `sqlite3_system_errno(db)`: the errno of the system call behind the connection's last failure
/// (ENOSPC behind SQLITE_FULL, EROFS or EACCES behind SQLITE_CANTOPEN), 0 when there was none.
///
/// # References
/// - [sqlite3_system_errno](https://www.sqlite.org/c3ref/system_errno.html)
pub fn system_errno(conn: &Connection) -> i32 {
    // SAFETY: the handle is the connection's own and valid while `conn` is borrowed; the call only
    // reads an int from it.
    unsafe { ffi::sqlite3_system_errno(conn.handle()) }
}
