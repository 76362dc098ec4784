//! A blob streamed from `GET /v2/NAME/blobs/DIGEST` (redirects followed by the client), resumed
//! with a `Range` request when the connection drops part-way, and reporting progress as it goes.
//!
//! Invariant: the bytes handed out are exactly the blob's bytes in order, whether they came in one
//! response or several; the reader never verifies them (the unpacker hashes what it reads, so a
//! registry that serves other bytes is caught there, by digest).

use super::client::Client;
use super::Progress;
use crate::digest::Digest;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

pub struct BlobReader<'a> {
    client: &'a Client,
    path: String,
    scope: String,
    digest: Digest,
    size: u64,
    offset: u64,
    body: Option<Box<dyn Read + Send + Sync + 'static>>,
    /// Bytes still to skip when a server ignored our Range and started from 0.
    skip: u64,
    failures: u32,
    progress: Option<Arc<Progress>>,
}

impl<'a> BlobReader<'a> {
    /// Opens the blob; errors here (404, 401, a dead registry) come back before any byte is read.
    pub fn open(
        client: &'a Client,
        repository: &str,
        scope: &str,
        digest: &Digest,
        size: u64,
        progress: Option<Arc<Progress>>,
    ) -> Result<Self, super::RegistryError> {
        let mut r = BlobReader {
            client,
            path: format!("/v2/{repository}/blobs/{digest}"),
            scope: scope.to_string(),
            digest: digest.clone(),
            size,
            offset: 0,
            body: None,
            skip: 0,
            failures: 0,
            progress,
        };
        let body = client
            .get(&r.path, &r.scope, &[])
            .map_err(|refusal| client.refusal_error(refusal, &r.what()))?;
        r.body = Some(body.into_reader());
        r.report();
        Ok(r)
    }

    fn what(&self) -> String {
        format!("blob {}", self.digest)
    }

    fn report(&self) {
        if let Some(p) = &self.progress {
            p(&self.digest, self.offset, self.size);
        }
    }

    /// Asks for the rest of the blob from `offset`.
    fn reopen(&mut self) -> io::Result<()> {
        let range = format!("bytes={}-", self.offset);
        let resp = self
            .client
            .get(&self.path, &self.scope, &[("Range", &range)])
            .map_err(|r| io::Error::other(self.client.refusal_error(r, &self.what())))?;
        self.skip = match resp.status() {
            206 => 0,
            _ => self.offset, // a full answer: drop what we already have
        };
        self.body = Some(resp.into_reader());
        Ok(())
    }

    /// A read failed or ended early: decide whether to resume or give up.
    fn recover(&mut self, cause: io::Error) -> io::Result<()> {
        self.body = None;
        if self.failures >= self.client.retries() {
            return Err(io::Error::new(
                cause.kind(),
                format!(
                    "{}: download failed after {} of {} bytes ({} retries): {cause}",
                    self.what(),
                    self.offset,
                    self.size,
                    self.failures
                ),
            ));
        }
        let wait = Duration::from_millis(250u64 << self.failures.min(4));
        self.client.notice(&format!(
            "{}: {cause}; resuming at byte {} in {wait:?}",
            self.what(),
            self.offset
        ));
        std::thread::sleep(wait);
        self.failures += 1;
        // the request itself retries while the registry does not answer; past that, give up
        self.reopen().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{}: download failed after {} of {} bytes: {cause}; resuming failed: {e}",
                    self.what(),
                    self.offset,
                    self.size
                ),
            )
        })
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(body) = self.body.as_mut() else {
                self.recover(io::Error::other("no connection"))?;
                continue;
            };
            match body.read(buf) {
                Ok(0) if self.offset < self.size => {
                    let e = io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed early");
                    self.recover(e)?;
                }
                Ok(0) => return Ok(0),
                Ok(n) if self.skip > 0 => {
                    let dropped = (n as u64).min(self.skip) as usize;
                    self.skip -= dropped as u64;
                    if dropped < n {
                        buf.copy_within(dropped..n, 0);
                        return Ok(self.advance(n - dropped));
                    }
                }
                Ok(n) => return Ok(self.advance(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.recover(e)?,
            }
        }
    }
}

impl BlobReader<'_> {
    fn advance(&mut self, n: usize) -> usize {
        self.offset += n as u64;
        self.report();
        n
    }
}
