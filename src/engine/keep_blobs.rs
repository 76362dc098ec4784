//! `--keep-blobs`: a load or pull keeps each layer's compressed blob beside the layer (see
//! `store::kept_blobs`), for `push` to send as it came instead of compressing the layer again. A
//! layer unpacked now has its blob copied as it streams through the unpacker (the same single
//! pass, and the unpacker's checks cover the copy); a layer the store held already has its blob
//! fetched and checked alone (digest, size, and that it decompresses to the layer's diffID).

use super::{Engine, EngineError, Result};
use crate::digest::Digest;
use crate::image::Descriptor;
use crate::source::ImageSource;
use crate::store::{LayerKey, LayerPaths, Store};
use crate::unpack::{self, ExpectedBlob};
use std::io::{self, Read, Write};
use std::path::PathBuf;

impl Engine {
    /// Whether `load` and `pull` keep the layers' compressed blobs (off unless asked: it costs the
    /// compressed size again on disk).
    pub fn set_keep_blobs(&mut self, keep: bool) {
        self.keep_blobs = keep;
    }
}

/// A reader that writes a copy of everything read through it.
struct TeeReader<R, W> {
    inner: R,
    copy: W,
    path: PathBuf,
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n]).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("keeping the blob in {}: {e}", self.path.display()),
            )
        })?;
        Ok(n)
    }
}

/// `blob`, copied as it is read into a kept blob of the layer being unpacked in `staged`.
pub(super) fn tee_into_staged<'a>(
    store: &Store,
    staged: &LayerPaths,
    digest: &Digest,
    blob: Box<dyn Read + Send + 'a>,
) -> Result<Box<dyn Read + Send + 'a>> {
    let copy = store.stage_kept_blob(staged, digest)?;
    Ok(Box::new(TeeReader {
        inner: blob,
        copy,
        path: staged.kept_blob(digest),
    }))
}

/// Keeps blob `desc` of the stored layer `key` (whose diffID is `diff_id`), unless it is kept.
pub(super) fn keep_for_stored(
    store: &Store,
    source: &dyn ImageSource,
    desc: &Descriptor,
    diff_id: &Digest,
    key: &LayerKey,
) -> Result<()> {
    if store
        .kept_blobs(key)?
        .iter()
        .any(|b| b.digest == desc.digest)
    {
        return Ok(());
    }
    let blob = source.open_blob(desc)?;
    let expected = ExpectedBlob {
        digest: &desc.digest,
        size: Some(desc.size),
        diff_id,
    };
    let path = store.layout().layer(key).kept_blob(&desc.digest);
    store.keep_blob_with(key, &desc.digest, |file| {
        let tee = TeeReader {
            inner: blob,
            copy: file,
            path,
        };
        unpack::verify_blob(tee, &expected).map_err(EngineError::from)
    })
}
