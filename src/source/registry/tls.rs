//! TLS trust for one registry: the system roots, plus the CAs docker and podman would add for it
//! (`/etc/docker/certs.d/HOST[:PORT]/*.crt`, `/etc/containers/certs.d/…`, and `--cert-dir DIR`),
//! or no verification at all for a registry the user declared insecure (docker's
//! `insecure-registries`: HTTPS without verification first, then plain HTTP). A client
//! certificate (`NAME.cert` + `NAME.key` in the same dirs, see `client_cert`) is offered to a
//! registry that asks for one, verified or not. The handshake has its own time limit
//! (`HandshakeLimited`), as docker's transport has.

use super::{client_cert, RegistryError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where per-registry CA directories live: docker's and podman's places, or `$LAMINA_CERTS_D`
/// (one directory, for tests and unusual setups).
fn certs_d_roots() -> Vec<PathBuf> {
    match std::env::var_os("LAMINA_CERTS_D") {
        Some(d) => vec![PathBuf::from(d)],
        None => vec![
            "/etc/docker/certs.d".into(),
            "/etc/containers/certs.d".into(),
        ],
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The dirs whose certificates apply to `host`: `certs.d/HOST` under docker's and podman's roots,
/// then `--cert-dir` (which must exist).
fn cert_dirs(host: &str, cert_dir: Option<&Path>) -> Result<Vec<PathBuf>, RegistryError> {
    let mut dirs: Vec<PathBuf> = certs_d_roots().iter().map(|r| r.join(host)).collect();
    if let Some(d) = cert_dir {
        if !d.is_dir() {
            return Err(RegistryError::CertDir {
                path: d.to_path_buf(),
                reason: "not a directory".into(),
            });
        }
        dirs.push(d.to_path_buf());
    }
    Ok(dirs)
}

/// Ends a config: with the client certificate of `dirs` if there is one.
fn with_client_cert(
    builder: rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
    dirs: &[PathBuf],
) -> Result<ClientConfig, RegistryError> {
    match client_cert::find(dirs)? {
        Some(c) => {
            builder
                .with_client_auth_cert(c.chain, c.key)
                .map_err(|e| RegistryError::CertDir {
                    path: c.cert_file,
                    reason: format!("client certificate and key: {e}"),
                })
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// A client config that verifies `host`'s certificate against the system roots and the extra CAs.
pub fn verifying_config(
    host: &str,
    cert_dir: Option<&Path>,
) -> Result<Arc<ClientConfig>, RegistryError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!("system CA store: {e}");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!("system roots: {added} added, {ignored} unparsable");
    let dirs = cert_dirs(host, cert_dir)?;
    let mut extra = Vec::new();
    for dir in &dirs {
        add_ca_dir(&mut extra, dir)?;
    }
    for c in &extra {
        roots.add(c.clone()).map_err(|e| RegistryError::Tls {
            host: host.into(),
            reason: format!("a CA of the registry's cert dirs: {e}"),
        })?;
    }
    let tls_err = |reason: String| RegistryError::Tls {
        host: host.into(),
        reason,
    };
    let provider = provider();
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| tls_err(e.to_string()))?;
    let verifier = Arc::new(TrustedOrPinned {
        webpki,
        pinned: extra,
        provider: provider.clone(),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    Ok(Arc::new(with_client_cert(builder, &dirs)?))
}

/// The usual verification against the roots, plus one case Go's crypto/x509 (so docker, podman
/// and skopeo) accepts and webpki does not: a self-signed certificate that is itself in a cert dir
/// (a CA certificate served as the leaf). It is trusted only for the names it carries.
#[derive(Debug)]
struct TrustedOrPinned {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for TrustedOrPinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let err =
            match self
                .webpki
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
        if !self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Err(err);
        }
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|e| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
                Arc::new(e),
            )))
        })?;
        cert.verify_is_valid_for_subject_name(server_name)
            .map_err(|_| {
                rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
            })?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Adds every `*.crt` of `dir` (docker's rule: `ca.crt` and any other `.crt`; `.cert`/`.key`
/// pairs are client certificates, not CAs). A missing dir adds nothing.
fn add_ca_dir(out: &mut Vec<CertificateDer<'static>>, dir: &Path) -> Result<(), RegistryError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(RegistryError::CertDir {
                path: dir.to_path_buf(),
                reason: e.to_string(),
            })
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    files.sort();
    for file in files {
        let bad = |reason: String| RegistryError::CertDir {
            path: file.clone(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&file)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
        if certs.is_empty() {
            return Err(bad("holds no PEM certificate".into()));
        }
        out.extend(certs);
        tracing::debug!("trusting CA {}", file.display());
    }
    Ok(())
}

/// A client config that accepts any certificate (for registries declared insecure). Signatures
/// are still checked, so the handshake is a real one; only the identity goes unverified. A client
/// certificate is still offered (docker does too).
pub fn unverified_config(
    host: &str,
    cert_dir: Option<&Path>,
) -> Result<Arc<ClientConfig>, RegistryError> {
    let dirs = cert_dirs(host, cert_dir)?;
    let provider = provider();
    let verifier = Arc::new(AcceptAnyCert(provider.clone()));
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Tls {
            host: host.into(),
            reason: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    Ok(Arc::new(with_client_cert(builder, &dirs)?))
}

/// The TLS of a ureq agent with a time limit on the handshake (docker's `TLSHandshakeTimeout`):
/// while it runs, the socket's read and write timeouts are `handshake`; after it, `stall` again
/// (the limit on a silent registry for the rest of the connection).
pub(crate) struct HandshakeLimited {
    pub config: Arc<ClientConfig>,
    pub handshake: Duration,
    pub stall: Duration,
}

impl ureq::TlsConnector for HandshakeLimited {
    fn connect(
        &self,
        dns_name: &str,
        io: Box<dyn ureq::ReadWrite>,
    ) -> Result<Box<dyn ureq::ReadWrite>, ureq::Error> {
        if let Some(s) = io.socket() {
            s.set_read_timeout(Some(self.handshake))?;
            s.set_write_timeout(Some(self.handshake))?;
        }
        match ureq::TlsConnector::connect(&self.config, dns_name, io) {
            Ok(stream) => {
                if let Some(s) = stream.socket() {
                    s.set_read_timeout(Some(self.stall))?;
                    s.set_write_timeout(Some(self.stall))?;
                }
                Ok(stream)
            }
            Err(e) if super::error::timed_out(&e) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "TLS handshake: no answer within {}s",
                    self.handshake.as_secs()
                ),
            )
            .into()),
            Err(e) => Err(e),
        }
    }
}

#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
