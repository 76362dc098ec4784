//! The registry's write side (distribution spec, "Push"): `HEAD` a blob to learn whether the
//! registry has it, mount it from another repository of the same registry, upload it whole
//! (`POST` then `PUT ?digest=`) or in chunks (`POST`, `PATCH` per chunk with `Content-Range`,
//! `PUT ?digest=` at the end, when the digest of a blob compressed as it streams is known), and
//! `PUT` the manifest by tag.
//!
//! Invariant: a chunk is kept until the registry has taken it, so a connection that drops in the
//! middle of a `PATCH` is resumed from the offset the registry reports (`GET` of the upload URL
//! answers `Range: 0-LAST`), never by sending bytes twice or leaving a hole.

use super::client::{redact, Client, Refusal};
use super::{RegistryError, RegistryOptions};
use crate::digest::Digest;
use crate::image::Reference;

/// One repository of a registry, opened for pushing.
pub struct Uploader {
    client: Client,
    path: String,
    scope: String,
}

/// Where a blob of the registry was mounted from, or why it was not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOutcome {
    Mounted,
    /// The registry started an upload instead (it does not have the blob there, or refuses).
    NotMounted,
}

impl Uploader {
    /// Connects to the registry of `reference`, for its repository, with push rights.
    pub fn open(reference: &Reference, opts: &RegistryOptions) -> Result<Uploader, RegistryError> {
        let client = Client::connect(&reference.domain, opts)?;
        Ok(Uploader {
            client,
            scope: format!("repository:{}:pull,push", reference.path),
            path: reference.path.clone(),
        })
    }

    pub fn registry(&self) -> &str {
        self.client.registry()
    }

    fn refused(&self, r: Refusal, what: &str) -> RegistryError {
        self.client.refusal_error(r, what)
    }

    /// `HEAD /v2/NAME/blobs/DIGEST`: true when this repository has the blob.
    pub fn has_blob(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let url = format!("/v2/{}/blobs/{digest}", self.path);
        match self.client.send("HEAD", &url, &self.scope, &[], None) {
            Ok(_) => Ok(true),
            Err(r) if r.status == 404 => Ok(false),
            Err(r) => Err(self.refused(r, &format!("blob {digest}"))),
        }
    }

    /// `POST /v2/NAME/blobs/uploads/?mount=DIGEST&from=REPO`: the registry links the blob it holds
    /// in `from` into this repository without a byte sent. An upload it starts instead is
    /// cancelled.
    pub fn mount(&self, digest: &Digest, from: &str) -> Result<MountOutcome, RegistryError> {
        let scope = format!("{} repository:{from}:pull", self.scope);
        let url = format!(
            "/v2/{}/blobs/uploads/?mount={digest}&from={from}",
            self.path
        );
        let what = format!("mounting blob {digest} from {from}");
        let resp = self
            .client
            .send("POST", &url, &scope, &[("Content-Length", "0")], Some(&[]))
            .map_err(|r| self.refused(r, &what))?;
        if resp.status() == 201 {
            return Ok(MountOutcome::Mounted);
        }
        if let Some(loc) = resp.header("location") {
            let loc = self.absolute(loc);
            let _ = self.client.send("DELETE", &loc, &self.scope, &[], None);
        }
        Ok(MountOutcome::NotMounted)
    }

    /// Starts an upload session; returns its URL.
    pub fn start(&self, what: &str) -> Result<BlobUpload<'_>, RegistryError> {
        let url = format!("/v2/{}/blobs/uploads/", self.path);
        let resp = self
            .client
            .send(
                "POST",
                &url,
                &self.scope,
                &[("Content-Length", "0")],
                Some(&[]),
            )
            .map_err(|r| self.refused(r, what))?;
        let location = self.location(&resp, what)?;
        Ok(BlobUpload {
            up: self,
            location,
            offset: 0,
            what: what.to_string(),
            broken_by: None,
        })
    }

    /// A small blob (a config) in one request: `POST`, then `PUT ?digest=` with the bytes.
    pub fn upload_whole(&self, digest: &Digest, bytes: &[u8]) -> Result<(), RegistryError> {
        let what = format!("blob {digest}");
        let session = self.start(&what)?;
        session.finish_with(digest, bytes)
    }

    /// `PUT /v2/NAME/manifests/TAG`; returns the digest the registry confirms
    /// (`Docker-Content-Digest`), which must be the hash of what was sent.
    pub fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        let url = format!("/v2/{}/manifests/{tag}", self.path);
        let what = format!("manifest {}:{tag}", self.path);
        let resp = self
            .client
            .send(
                "PUT",
                &url,
                &self.scope,
                &[("Content-Type", media_type)],
                Some(bytes),
            )
            .map_err(|r| self.refused(r, &what))?;
        let ours = Digest::of_bytes(bytes);
        match resp.header("docker-content-digest") {
            Some(d) => match d.parse::<Digest>() {
                Ok(d) if d == ours => Ok(d),
                _ => Err(RegistryError::Malformed {
                    what,
                    reason: format!("the registry confirms digest {d}, but we sent {ours}"),
                }),
            },
            None => Ok(ours),
        }
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with('/') {
            format!("{}{location}", self.client.base())
        } else {
            location.to_string()
        }
    }

    fn location(&self, resp: &ureq::Response, what: &str) -> Result<String, RegistryError> {
        match resp.header("location") {
            Some(l) => Ok(self.absolute(l)),
            None => Err(RegistryError::Malformed {
                what: what.to_string(),
                reason: format!("HTTP {} without a Location", resp.status()),
            }),
        }
    }
}

/// An upload session: chunks are sent in order as they are produced.
pub struct BlobUpload<'a> {
    up: &'a Uploader,
    location: String,
    offset: u64,
    what: String,
    /// Why a PATCH of this upload broke, once one has and was resumed.
    broken_by: Option<String>,
}

impl BlobUpload<'_> {
    /// Bytes the registry has taken.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// `PATCH` one chunk. A dropped connection is resumed from where the registry says it is
    /// (said on stderr through `tracing`); `on_resume` hears of it.
    pub fn send_chunk(
        &mut self,
        chunk: &[u8],
        on_resume: &dyn Fn(&str),
    ) -> Result<(), RegistryError> {
        let start = self.offset;
        let mut failures = 0;
        loop {
            let done = (self.offset - start) as usize;
            let rest = &chunk[done..];
            if rest.is_empty() {
                return Ok(());
            }
            let range = format!("{}-{}", self.offset, self.offset + rest.len() as u64 - 1);
            let len = rest.len().to_string();
            let headers = [
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", range.as_str()),
                ("Content-Length", len.as_str()),
            ];
            match self.up.client.send(
                "PATCH",
                &self.location,
                &self.up.scope,
                &headers,
                Some(rest),
            ) {
                Ok(resp) => {
                    self.location = self.up.location(&resp, &self.what)?;
                    self.offset += rest.len() as u64;
                }
                Err(r) if is_broken(&r) && failures < self.up.client.retries() => {
                    failures += 1;
                    let cause = r.message.clone();
                    // A registry that lost the session (distribution cancels an upload whose
                    // state no longer matches what it holds) leaves restarting the blob to the
                    // caller: the error stays a broken connection.
                    let have = self.registry_offset().map_err(|e| RegistryError::Request {
                        method: "PATCH".into(),
                        url: redact(&self.location),
                        reason: format!("{cause}; the upload cannot be resumed: {e}"),
                    })?;
                    if have < start || have > start + chunk.len() as u64 {
                        return Err(RegistryError::Malformed {
                            what: self.what.clone(),
                            reason: format!(
                                "the upload broke ({cause}) and the registry holds {have} bytes, \
                                 not between {start} and {}",
                                start + chunk.len() as u64
                            ),
                        });
                    }
                    on_resume(&format!(
                        "{}: upload interrupted ({cause}); resuming at byte {have}",
                        self.what
                    ));
                    self.offset = have;
                    self.broken_by = Some(cause);
                }
                Err(r) => return Err(self.refused(r, "PATCH")),
            }
        }
    }

    /// `GET` of the upload URL: `Range: 0-LAST` says how many bytes the registry holds.
    fn registry_offset(&mut self) -> Result<u64, RegistryError> {
        let resp = self
            .up
            .client
            .send("GET", &self.location, &self.up.scope, &[], None)
            .map_err(|r| self.up.refused(r, &self.what))?;
        if let Some(l) = resp.header("location") {
            self.location = self.up.absolute(l);
        }
        Ok(held_bytes(resp.header("range").unwrap_or("")))
    }

    /// `PUT ?digest=` ending the upload, with the last bytes (or none).
    pub fn finish_with(self, digest: &Digest, last: &[u8]) -> Result<(), RegistryError> {
        let sep = if self.location.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!("{}{sep}digest={digest}", self.location);
        let len = last.len().to_string();
        self.up
            .client
            .send(
                "PUT",
                &url,
                &self.up.scope,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Length", len.as_str()),
                ],
                Some(last),
            )
            .map(drop)
            .map_err(|r| self.refused(r, "PUT"))
    }

    /// What a refusal of `method` on this upload means. distribution drops a session whose file
    /// grew under a broken PATCH after it answered the GET that resumed it (404
    /// BLOB_UPLOAD_INVALID): the upload is lost to the cut, so the error stays a broken
    /// connection and the caller restarts the blob.
    fn refused(&self, r: Refusal, method: &str) -> RegistryError {
        match &self.broken_by {
            Some(cause) if r.status == 404 && r.error.is_none() => RegistryError::Request {
                method: method.into(),
                url: redact(&self.location),
                reason: format!(
                    "{cause}; the registry dropped the upload when it was resumed: {}",
                    r.message
                ),
            },
            _ => self.up.refused(r, &self.what),
        }
    }

    /// Where the upload is, for messages.
    pub fn url(&self) -> String {
        redact(&self.location)
    }
}

/// A connection that broke under the request (not a refusal, nor an auth failure).
fn is_broken(r: &Refusal) -> bool {
    matches!(
        r.error.as_deref(),
        Some(RegistryError::Request { .. } | RegistryError::Transport { .. })
    )
}

/// How many bytes an upload's `Range` says the registry holds: `0-1023` -> 1024. distribution
/// answers `0-0` both for an empty upload and for one of one byte (its end is `size - 1`, but never
/// below 0); a cut connection leaves the empty one, so `0-0` is read as nothing held. Were it the
/// one byte, the resent byte 0 is refused (416), never stored twice.
pub(crate) fn held_bytes(range: &str) -> u64 {
    let range = range.trim().strip_prefix("bytes=").unwrap_or(range.trim());
    let end = range
        .split_once('-')
        .and_then(|(_, end)| end.trim().parse::<u64>().ok());
    match end {
        None | Some(0) => 0,
        Some(last) => last + 1,
    }
}

#[cfg(test)]
#[path = "upload_tests.rs"]
mod tests;
