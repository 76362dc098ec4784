//! Client certificates for registries that ask for one (TLS client auth), found where docker finds
//! them: in the registry's cert dirs (`/etc/docker/certs.d/HOST[:PORT]/`, podman's
//! `/etc/containers/certs.d/…`, `--cert-dir DIR`), as a `NAME.cert` with its key `NAME.key`.
//!
//! docker's rules (registry.ReadCertsDirectory): a `.cert` without its `.key`, or a `.key` without
//! its `.cert`, is an error, not silently skipped (CAs must be named `.crt`); of several pairs the
//! first (by name) is offered.

use super::RegistryError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

/// A certificate chain and its private key, and where they came from.
pub(crate) struct ClientCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub cert_file: PathBuf,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientCert({})", self.cert_file.display())
    }
}

/// The first `.cert`/`.key` pair of `dirs` (missing dirs hold none).
pub(crate) fn find(dirs: &[PathBuf]) -> Result<Option<ClientCert>, RegistryError> {
    for dir in dirs {
        let pairs = pairs_in(dir)?;
        if let Some((cert, key)) = pairs.into_iter().next() {
            return load(&cert, &key).map(Some);
        }
    }
    Ok(None)
}

/// Every `NAME.cert` of `dir` with its `NAME.key`, sorted by name; an unpaired one is an error.
pub(crate) fn pairs_in(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, RegistryError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(RegistryError::CertDir {
                path: dir.to_path_buf(),
                reason: e.to_string(),
            })
        }
    };
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    let has = |p: &Path| names.iter().any(|n| n == p);
    let mut pairs = Vec::new();
    for path in &names {
        let unpaired = |reason: String| RegistryError::CertDir {
            path: path.clone(),
            reason,
        };
        match path.extension().and_then(|x| x.to_str()) {
            Some("cert") => {
                let key = path.with_extension("key");
                if !has(&key) {
                    return Err(unpaired(format!(
                        "client certificate without its key {} (CA certificates must be named *.crt)",
                        key.display()
                    )));
                }
                pairs.push((path.clone(), key));
            }
            Some("key") if !has(&path.with_extension("cert")) => {
                return Err(unpaired(format!(
                    "key without its client certificate {}",
                    path.with_extension("cert").display()
                )));
            }
            _ => {}
        }
    }
    Ok(pairs)
}

fn load(cert: &Path, key: &Path) -> Result<ClientCert, RegistryError> {
    let bad = |path: &Path, reason: String| RegistryError::CertDir {
        path: path.to_path_buf(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert, format!("not a PEM certificate: {e}")))?;
    if chain.is_empty() {
        return Err(bad(cert, "holds no PEM certificate".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| bad(key, format!("not a PEM private key: {e}")))?;
    tracing::debug!("client certificate {}", cert.display());
    Ok(ClientCert {
        chain,
        key: key_der,
        cert_file: cert.to_path_buf(),
    })
}

#[cfg(test)]
#[path = "client_cert_tests.rs"]
mod tests;
