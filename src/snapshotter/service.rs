//! The Snapshots v1 service: each RPC hands its request to the engine on a blocking thread, one
//! at a time (the engine owns one database connection; containerd's calls are short, and a
//! commit's hashing is the one long step), and logs what it did.

use super::convert;
use crate::engine::{Engine, EngineError, PrepareStep};
use containerd_snapshots::api::snapshots::v1::snapshots_server::Snapshots;
use containerd_snapshots::api::snapshots::v1::*;
use containerd_snapshots::tonic::{self, Request, Response, Status};
use futures_util::stream::{self, BoxStream};
use std::sync::{Arc, Mutex};

/// The engine, shared by the RPCs.
#[derive(Clone)]
pub struct Service {
    engine: Arc<Mutex<Engine>>,
}

impl Service {
    pub fn new(engine: Engine) -> Service {
        Service {
            engine: Arc::new(Mutex::new(engine)),
        }
    }

    /// Runs `op` on the engine off the async threads; a refusal or failure becomes the status
    /// containerd expects, and is logged with the RPC and its key.
    pub async fn run<T: Send + 'static>(
        &self,
        rpc: &'static str,
        key: String,
        op: impl FnOnce(&mut Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, Status> {
        let engine = self.engine.clone();
        let key2 = key.clone();
        let result = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            // A panic in one call must not wedge the server: the engine's state is in the store.
            let mut engine = engine.lock().unwrap_or_else(|e| e.into_inner());
            let out = op(&mut engine);
            tracing::debug!(rpc, key = %key2, elapsed_ms = started.elapsed().as_millis() as u64);
            out
        })
        .await
        .map_err(|e| Status::internal(format!("{rpc} {key}: {e}")))?;
        result.map_err(|e| {
            let status = convert::status(&e);
            if e.snapshot_refusal().is_some() {
                tracing::debug!(rpc, %key, code = ?status.code(), "{e}");
            } else {
                tracing::warn!(rpc, %key, "{e}");
            }
            status
        })
    }
}

#[tonic::async_trait]
impl Snapshots for Service {
    async fn prepare(
        &self,
        request: Request<PrepareSnapshotRequest>,
    ) -> Result<Response<PrepareSnapshotResponse>, Status> {
        let r = request.into_inner();
        tracing::info!(key = %r.key, parent = %r.parent, "prepare");
        let labels = convert::labels(r.labels);
        let (key, parent) = (r.key.clone(), r.parent);
        let step = self
            .run("prepare", r.key.clone(), move |e| {
                e.snapshot_prepare_begin(&key, &parent, labels)
            })
            .await?;
        let mounts = match step {
            PrepareStep::Ready(mounts) => mounts,
            // The layer is being fetched: waited for off the engine, so that other RPCs (and
            // other images' Prepares) go on meanwhile.
            PrepareStep::Fetching(wait) => {
                let fetched = tokio::task::spawn_blocking(move || wait.wait())
                    .await
                    .map_err(|e| Status::internal(format!("prepare {}: {e}", r.key)))?;
                self.run("prepare", r.key, move |e| {
                    e.snapshot_prepare_finish(fetched)
                })
                .await?
            }
        };
        Ok(Response::new(PrepareSnapshotResponse {
            mounts: convert::mounts(mounts),
        }))
    }

    async fn view(
        &self,
        request: Request<ViewSnapshotRequest>,
    ) -> Result<Response<ViewSnapshotResponse>, Status> {
        let r = request.into_inner();
        tracing::info!(key = %r.key, parent = %r.parent, "view");
        let labels = convert::labels(r.labels);
        let (key, parent) = (r.key.clone(), r.parent);
        let mounts = self
            .run("view", r.key, move |e| {
                e.snapshot_view(&key, &parent, labels)
            })
            .await?;
        Ok(Response::new(ViewSnapshotResponse {
            mounts: convert::mounts(mounts),
        }))
    }

    async fn mounts(
        &self,
        request: Request<MountsRequest>,
    ) -> Result<Response<MountsResponse>, Status> {
        let key = request.into_inner().key;
        let k = key.clone();
        let mounts = self
            .run("mounts", key, move |e| e.snapshot_mounts(&k))
            .await?;
        Ok(Response::new(MountsResponse {
            mounts: convert::mounts(mounts),
        }))
    }

    /// Served by `super::commit` instead (it reads the request's `parent`, which this crate's
    /// generated request type lacks); kept for the trait.
    async fn commit(
        &self,
        request: Request<CommitSnapshotRequest>,
    ) -> Result<Response<()>, Status> {
        let r = request.into_inner();
        super::commit::commit(self, r.name, r.key, r.labels, String::new()).await
    }

    async fn remove(
        &self,
        request: Request<RemoveSnapshotRequest>,
    ) -> Result<Response<()>, Status> {
        let key = request.into_inner().key;
        tracing::info!(%key, "remove");
        let k = key.clone();
        self.run("remove", key, move |e| e.snapshot_remove(&k))
            .await?;
        Ok(Response::new(()))
    }

    async fn stat(
        &self,
        request: Request<StatSnapshotRequest>,
    ) -> Result<Response<StatSnapshotResponse>, Status> {
        let key = request.into_inner().key;
        let k = key.clone();
        let info = self.run("stat", key, move |e| e.snapshot_stat(&k)).await?;
        Ok(Response::new(StatSnapshotResponse {
            info: Some(convert::info(info)),
        }))
    }

    async fn update(
        &self,
        request: Request<UpdateSnapshotRequest>,
    ) -> Result<Response<UpdateSnapshotResponse>, Status> {
        let r = request.into_inner();
        let info = r
            .info
            .ok_or_else(|| Status::invalid_argument("update: no snapshot info given"))?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let labels = convert::labels(info.labels);
        let name = info.name.clone();
        let updated = self
            .run("update", info.name, move |e| {
                e.snapshot_update(&name, labels, &paths)
            })
            .await?;
        Ok(Response::new(UpdateSnapshotResponse {
            info: Some(convert::info(updated)),
        }))
    }

    type ListStream = BoxStream<'static, Result<ListSnapshotsResponse, Status>>;

    async fn list(
        &self,
        request: Request<ListSnapshotsRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let filters = request.into_inner().filters;
        let shown = filters.join(" | ");
        let infos = self
            .run("list", shown, move |e| e.snapshot_walk(&filters))
            .await?;
        // In messages of at most 100 infos, as containerd's own server sends them.
        let mut infos: Vec<Info> = infos.into_iter().map(convert::info).collect();
        let mut chunks = Vec::new();
        while !infos.is_empty() {
            let rest = infos.split_off(infos.len().min(100));
            chunks.push(Ok(ListSnapshotsResponse { info: infos }));
            infos = rest;
        }
        Ok(Response::new(Box::pin(stream::iter(chunks))))
    }

    async fn usage(
        &self,
        request: Request<UsageRequest>,
    ) -> Result<Response<UsageResponse>, Status> {
        let key = request.into_inner().key;
        let k = key.clone();
        let u = self
            .run("usage", key, move |e| e.snapshot_usage(&k))
            .await?;
        Ok(Response::new(UsageResponse {
            size: u.size as i64,
            inodes: u.inodes as i64,
        }))
    }

    async fn cleanup(&self, _request: Request<CleanupRequest>) -> Result<Response<()>, Status> {
        let removed = self
            .run("cleanup", String::new(), |e| e.snapshot_cleanup())
            .await?;
        tracing::info!(removed, "cleanup");
        Ok(Response::new(()))
    }
}
