//! Writeback hints: telling the kernel to start writing a file's dirty pages now.

use rustix::fd::{AsFd, AsRawFd};

/// `sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)`: start writeback of all of `fd`'s dirty
/// pages without waiting for it. Advisory (it makes nothing durable: no metadata, no disk cache
/// flush), so the caller still needs `fsync`/`syncfs`; rustix does not wrap it.
///
/// # References
/// - [Linux `sync_file_range(2)`](https://man7.org/linux/man-pages/man2/sync_file_range.2.html)
#[inline]
pub fn start_writeback<Fd: AsFd>(fd: Fd) -> std::io::Result<()> {
    // SAFETY: sync_file_range takes only integers; the fd is borrowed, so open for the call.
    let rc =
        unsafe { libc::sync_file_range(fd.as_fd().as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
