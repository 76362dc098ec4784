//! gRPC clients over unix sockets, for what ctr cannot do: a Snapshots v1 client straight on the
//! lamina snapshotter's socket (the generated client of containerd-snapshots, the crate lamina
//! serves with), and CRI's `ImageService/PullImage` (kubelet's image pull) on containerd's socket,
//! its two messages written out here (runtime.v1, api.proto) rather than a second tonic.

use containerd_snapshots::api::snapshots::v1::snapshots_client::SnapshotsClient;
use containerd_snapshots::api::snapshots::v1::*;
use containerd_snapshots::tonic::{
    self,
    codegen::{http, Service},
    transport::{Channel, Endpoint, Uri},
    Code,
};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::mounts::MountSpec;

/// A runtime for one client (its channel's worker task lives on it).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Connects each new HTTP/2 connection to the unix socket.
#[derive(Clone)]
struct UnixConnector(PathBuf);

impl Service<Uri> for UnixConnector {
    type Response = tokio::net::UnixStream;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let path = self.0.clone();
        Box::pin(async move { tokio::net::UnixStream::connect(path).await })
    }
}

/// A channel to the gRPC server on unix socket `socket` (the URI is only a placeholder).
pub async fn channel(socket: &Path) -> Channel {
    Endpoint::from_static("http://localhost")
        .connect_with_connector(UnixConnector(socket.to_path_buf()))
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()))
}

fn mounts(m: Vec<containerd_snapshots::api::types::Mount>) -> Vec<MountSpec> {
    m.into_iter()
        .map(|m| MountSpec {
            kind: m.r#type,
            source: m.source,
            options: m.options,
        })
        .collect()
}

/// The Snapshots v1 API of one snapshotter, called as containerd's proxy calls it.
pub struct Snapshots {
    runtime: tokio::runtime::Runtime,
    client: SnapshotsClient<Channel>,
}

impl Snapshots {
    pub fn connect(socket: &Path) -> Snapshots {
        let runtime = runtime();
        let client = SnapshotsClient::new(runtime.block_on(channel(socket)));
        Snapshots { runtime, client }
    }

    pub fn prepare(&mut self, key: &str, parent: &str) -> Vec<MountSpec> {
        let req = PrepareSnapshotRequest {
            key: key.into(),
            parent: parent.into(),
            ..Default::default()
        };
        let r = self
            .runtime
            .block_on(self.client.prepare(req))
            .unwrap_or_else(|s| panic!("Prepare {key} over {parent:?}: {s}"));
        mounts(r.into_inner().mounts)
    }

    pub fn view(&mut self, key: &str, parent: &str) -> Vec<MountSpec> {
        let req = ViewSnapshotRequest {
            key: key.into(),
            parent: parent.into(),
            ..Default::default()
        };
        let r = self
            .runtime
            .block_on(self.client.view(req))
            .unwrap_or_else(|s| panic!("View {key} of {parent}: {s}"));
        mounts(r.into_inner().mounts)
    }

    pub fn commit(&mut self, name: &str, key: &str) {
        let req = CommitSnapshotRequest {
            name: name.into(),
            key: key.into(),
            ..Default::default()
        };
        self.runtime
            .block_on(self.client.commit(req))
            .unwrap_or_else(|s| panic!("Commit {key} as {name}: {s}"));
    }

    pub fn remove(&mut self, key: &str) {
        let req = RemoveSnapshotRequest {
            key: key.into(),
            ..Default::default()
        };
        self.runtime
            .block_on(self.client.remove(req))
            .unwrap_or_else(|s| panic!("Remove {key}: {s}"));
    }
}

/// CRI v1 `ImageSpec` (the fields a pull needs).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageSpec {
    #[prost(string, tag = "1")]
    pub image: String,
}

/// CRI v1 `PullImageRequest` without auth and sandbox config (anonymous pull).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PullImageRequest {
    #[prost(message, optional, tag = "1")]
    pub image: Option<ImageSpec>,
}

/// CRI v1 `PullImageResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PullImageResponse {
    #[prost(string, tag = "1")]
    pub image_ref: String,
}

/// Kubelet's image pull through containerd's CRI plugin: the image's reference (its config
/// digest), or the gRPC status when the pull failed.
pub fn cri_pull(containerd_socket: &Path, image: &str) -> Result<String, (Code, String)> {
    runtime().block_on(async {
        let mut grpc = tonic::client::Grpc::new(channel(containerd_socket).await);
        grpc.ready()
            .await
            .map_err(|e| (Code::Unavailable, e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static("/runtime.v1.ImageService/PullImage");
        let codec = tonic::codec::ProstCodec::<PullImageRequest, PullImageResponse>::default();
        let req = PullImageRequest {
            image: Some(ImageSpec {
                image: image.into(),
            }),
        };
        grpc.unary(tonic::Request::new(req), path, codec)
            .await
            .map(|r| r.into_inner().image_ref)
            .map_err(|s| (s.code(), s.message().to_string()))
    })
}
