//! Between the engine's snapshot types and containerd's wire types: infos, kinds, times, mounts,
//! and errors as the gRPC status codes containerd's `errdefs` reads back.

use crate::engine::{
    EngineError, ErrorKind, Labels, RuntimeMount, SnapshotInfo, SnapshotKind, SnapshotRefusal,
};
use containerd_snapshots::api::snapshots::v1 as api;
use containerd_snapshots::api::types::Mount;
use containerd_snapshots::tonic::{Code, Status};
use std::collections::HashMap;

pub fn info(i: SnapshotInfo) -> api::Info {
    api::Info {
        name: i.name,
        parent: i.parent,
        kind: kind(i.kind) as i32,
        created_at: Some(timestamp(i.created)),
        updated_at: Some(timestamp(i.updated)),
        labels: i.labels.into_iter().collect(),
    }
}

fn kind(k: SnapshotKind) -> api::Kind {
    match k {
        SnapshotKind::View => api::Kind::View,
        SnapshotKind::Active => api::Kind::Active,
        SnapshotKind::Committed => api::Kind::Committed,
    }
}

fn timestamp(nanos: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

pub fn labels(l: HashMap<String, String>) -> Labels {
    l.into_iter().collect()
}

pub fn mounts(m: Vec<RuntimeMount>) -> Vec<Mount> {
    m.into_iter()
        .map(|m| Mount {
            r#type: m.kind,
            source: m.source,
            target: String::new(),
            options: m.options,
        })
        .collect()
}

/// The status containerd turns back into the same errdefs class (`errdefs.FromGRPC`): NotFound,
/// AlreadyExists, FailedPrecondition and InvalidArgument are what its callers branch on.
pub fn status(e: &EngineError) -> Status {
    let code = match e.snapshot_refusal() {
        Some(r) => match r {
            SnapshotRefusal::NotFound | SnapshotRefusal::ParentNotFound => Code::NotFound,
            SnapshotRefusal::Exists => Code::AlreadyExists,
            SnapshotRefusal::HasChildren
            | SnapshotRefusal::NotActive
            | SnapshotRefusal::Committed
            | SnapshotRefusal::TooDeep { .. }
            | SnapshotRefusal::Lost(_) => Code::FailedPrecondition,
            SnapshotRefusal::ParentNotCommitted
            | SnapshotRefusal::ChangedParent(_)
            | SnapshotRefusal::FieldPath(_)
            | SnapshotRefusal::Filter { .. }
            | SnapshotRefusal::EmptyKey => Code::InvalidArgument,
        },
        None => match e.kind() {
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::AlreadyExists => Code::AlreadyExists,
            ErrorKind::InUse => Code::FailedPrecondition,
            ErrorKind::Invalid => Code::InvalidArgument,
            ErrorKind::Corrupt => Code::DataLoss,
            ErrorKind::NoSpace => Code::ResourceExhausted,
            ErrorKind::ReadOnly => Code::FailedPrecondition,
            ErrorKind::PermissionDenied => Code::PermissionDenied,
            ErrorKind::Other => Code::Unknown,
        },
    };
    Status::new(code, e.to_string())
}
