//! Whether a filesystem shares file data between files (`FICLONE`).

use std::path::Path;

use rustix::fs::ioctl_ficlone;

/// Whether `dir`'s filesystem shares file data with `FICLONE` (btrfs, xfs with reflink,
/// bcachefs): one clone between two scratch files in `dir`, removed again.
pub fn supports_reflink(dir: &Path) -> bool {
    let a = dir.join(format!(".lamina-reflink-a-{}", std::process::id()));
    let b = dir.join(format!(".lamina-reflink-b-{}", std::process::id()));
    let result = (|| -> std::io::Result<bool> {
        std::fs::write(&a, [0x6cu8; 4096])?;
        let src = std::fs::File::open(&a)?;
        let dst = std::fs::File::create(&b)?;
        Ok(ioctl_ficlone(&dst, &src).is_ok())
    })();
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
    result.unwrap_or(false)
}
