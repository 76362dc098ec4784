//! `lamina snapshotter`: containerd's Snapshots v1 gRPC service on a unix socket, so containerd
//! (1.6, 1.7 and 2.x, through `proxy_plugins`) keeps its snapshots in lamina's store. A face, like
//! `cli`: requests are decoded here and served by the engine's `snapshot_*` operations, nothing
//! below it.
//!
//! The server runs in the foreground until SIGTERM or SIGINT, then removes its socket. A stale
//! socket (no server answers on it) is replaced; a live one is left alone and the start fails.
//! At start, what killed operations left (dirs and links without rows) is cleared.

mod commit;
mod convert;
mod service;

use crate::engine::{Engine, EngineError};
use containerd_snapshots::tonic;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("socket {path}: {source}")]
    Socket { path: PathBuf, source: io::Error },
    #[error("socket {0}: another server is listening on it")]
    InUse(PathBuf),
    #[error("{0}: not a socket, not replacing it")]
    NotSocket(PathBuf),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("runtime: {0}")]
    Runtime(io::Error),
}

/// Serves the store at `root` on the unix socket `address` until SIGTERM or SIGINT. With
/// `fetch_layers`, a Prepare that carries containerd's CRI labels has lamina fetch the layer from
/// the registry itself (see `engine::snapshots_fetch`).
pub fn serve(root: &Path, address: &Path, fetch_layers: bool) -> Result<(), ServeError> {
    let mut engine = Engine::open(root)?;
    engine.set_snapshot_fetch(fetch_layers);
    let cleared = engine.snapshot_cleanup()?;
    if cleared > 0 {
        tracing::info!(cleared, "removed what interrupted operations left");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(run(engine, address))
}

async fn run(engine: Engine, address: &Path) -> Result<(), ServeError> {
    let sock_err = |source| ServeError::Socket {
        path: address.to_path_buf(),
        source,
    };
    replace_stale_socket(address)?;
    let listener = tokio::net::UnixListener::bind(address).map_err(sock_err)?;
    // Only root (containerd) talks to it: the snapshots' mounts name the store's layer dirs.
    std::fs::set_permissions(address, std::fs::Permissions::from_mode(0o600)).map_err(sock_err)?;
    tracing::info!(root = %engine.root().display(), address = %address.display(), "lamina snapshotter serving");
    let router = commit::Router::new(service::Service::new(engine));
    let served = tonic::transport::Server::builder()
        .add_service(router)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::UnixListenerStream::new(listener),
            stop_signal(),
        )
        .await;
    let _ = std::fs::remove_file(address);
    tracing::info!("lamina snapshotter stopped");
    Ok(served?)
}

/// Resolves at the first SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}

/// Removes a socket left by a server that is gone; refuses to touch a live one or a non-socket.
fn replace_stale_socket(path: &Path) -> Result<(), ServeError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ServeError::Socket {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ServeError::NotSocket(path.to_path_buf()));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ServeError::InUse(path.to_path_buf()));
    }
    tracing::info!(address = %path.display(), "removing stale socket");
    std::fs::remove_file(path).map_err(|source| ServeError::Socket {
        path: path.to_path_buf(),
        source,
    })
}
