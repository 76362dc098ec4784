//! `Commit`, read with the field containerd-snapshots 0.3.0 does not know: `parent` (field 5 of
//! `CommitSnapshotRequest`, added for containerd 2.2's parallel unpack, the `rebase` capability).
//! Protobuf skips unknown fields, so the generated request type would silently drop it; this
//! module decodes Commit with its own message type and hands every other method to the generated
//! server unchanged.

use super::service::Service;
use containerd_snapshots::api::snapshots::v1::snapshots_server::SnapshotsServer;
use containerd_snapshots::tonic::{
    self,
    codegen::{http, Body, BoxFuture, Service as TowerService, StdError},
    server::{NamedService, UnaryService},
    Response, Status,
};
use std::collections::HashMap;
use std::convert::Infallible;
use std::task::{Context, Poll};

const COMMIT: &str = "/containerd.services.snapshots.v1.Snapshots/Commit";

/// containerd's `CommitSnapshotRequest` as of 2.2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CommitRequest {
    #[prost(string, tag = "1")]
    pub snapshotter: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub key: String,
    #[prost(map = "string, string", tag = "4")]
    pub labels: HashMap<String, String>,
    /// The parent to commit onto, for a snapshot prepared without one ("" otherwise).
    #[prost(string, tag = "5")]
    pub parent: String,
}

/// The Snapshots service: Commit here, everything else by the generated server.
#[derive(Clone)]
pub struct Router {
    service: Service,
    generated: SnapshotsServer<Service>,
}

impl Router {
    pub fn new(service: Service) -> Router {
        Router {
            generated: SnapshotsServer::new(service.clone()),
            service,
        }
    }
}

impl NamedService for Router {
    const NAME: &'static str = <SnapshotsServer<Service> as NamedService>::NAME;
}

impl<B> TowerService<http::Request<B>> for Router
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::BoxBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != COMMIT {
            return self.generated.call(req);
        }
        let method = CommitMethod(self.service.clone());
        Box::pin(async move {
            let codec = tonic::codec::ProstCodec::<(), CommitRequest>::default();
            Ok(tonic::server::Grpc::new(codec).unary(method, req).await)
        })
    }
}

struct CommitMethod(Service);

impl UnaryService<CommitRequest> for CommitMethod {
    type Response = ();
    type Future = BoxFuture<Response<()>, Status>;

    fn call(&mut self, request: tonic::Request<CommitRequest>) -> Self::Future {
        let service = self.0.clone();
        let r = request.into_inner();
        Box::pin(async move { commit(&service, r.name, r.key, r.labels, r.parent).await })
    }
}

pub async fn commit(
    service: &Service,
    name: String,
    key: String,
    labels: HashMap<String, String>,
    parent: String,
) -> Result<Response<()>, Status> {
    tracing::info!(%name, %key, %parent, "commit");
    let labels = super::convert::labels(labels);
    let k = key.clone();
    service
        .run("commit", key, move |e| {
            e.snapshot_commit(&name, &k, labels, &parent)
        })
        .await?;
    Ok(Response::new(()))
}
