use super::*;
use crate::store::SnapshotRow;
use std::path::Path;

fn row(id: i64, kind: SnapshotKind, labels: &[(&str, &str)]) -> SnapshotRow {
    SnapshotRow {
        id,
        key: format!("k{id}"),
        kind,
        parent: None,
        layer: None,
        chain_id: None,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        created: 0,
        updated: 0,
    }
}

fn layer(i: u32) -> LayerKey {
    LayerKey::parse(&format!("{i:064x}")).unwrap()
}

fn lowers(n: i64) -> Vec<(i64, LayerKey)> {
    (0..n).rev().map(|i| (i + 1, layer(i as u32))).collect()
}

/// containerd's overlayfs snapshotter gives these shapes (snapshots/overlay/overlay.go mounts()).
#[test]
fn mounts_are_what_containerds_overlay_snapshotter_returns() {
    let layout = Layout::new("/s");
    let active = describe_mounts(&layout, &row(9, SnapshotKind::Active, &[]), &[]);
    assert_eq!(
        active,
        vec![RuntimeMount::bind(Path::new("/s/snapshots/9/fs"), false)]
    );
    assert_eq!(active[0].options, ["rw", "rbind"]);

    let view = describe_mounts(&layout, &row(9, SnapshotKind::View, &[]), &[]);
    assert_eq!(view[0].options, ["ro", "rbind"]);

    let one = describe_mounts(&layout, &row(9, SnapshotKind::View, &[]), &lowers(1));
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].kind, "bind");
    assert_eq!(one[0].source, format!("/s/layers/{}/diff", layer(0)));
    assert_eq!(one[0].options, ["ro", "rbind"]);

    let over = describe_mounts(&layout, &row(40, SnapshotKind::Active, &[]), &lowers(2));
    assert_eq!(over[0].kind, "overlay");
    assert_eq!(
        over[0].options,
        [
            "lowerdir=/s/l/2:/s/l/1",
            "upperdir=/s/snapshots/40/fs",
            "workdir=/s/snapshots/40/work",
            "index=off"
        ]
    );
    let view = describe_mounts(&layout, &row(40, SnapshotKind::View, &[]), &lowers(2));
    assert_eq!(view[0].options, ["lowerdir=/s/l/2:/s/l/1", "index=off"]);
}

/// An image that repeats a layer (two empty layers, say) has two committed snapshots on one layer
/// dir; overlayfs refuses a dir twice in one stack (ELOOP), so the lower place goes.
#[test]
fn a_layer_two_parents_share_is_stacked_once_at_its_nearest_place() {
    let layout = Layout::new("/s");
    let stack = [(3, layer(7)), (2, layer(8)), (1, layer(7))];
    let active = describe_mounts(&layout, &row(9, SnapshotKind::Active, &[]), &stack);
    assert_eq!(active.len(), 1);
    assert_eq!(
        active[0].options,
        [
            "lowerdir=/s/l/3:/s/l/2",
            "upperdir=/s/snapshots/9/fs",
            "workdir=/s/snapshots/9/work",
            "index=off"
        ]
    );
    // one layer left: a view of it is the read-only bind of that layer
    let same = [(2, layer(7)), (1, layer(7))];
    let view = describe_mounts(&layout, &row(9, SnapshotKind::View, &[]), &same);
    assert_eq!(
        view,
        vec![RuntimeMount::bind(
            Path::new(&format!("/s/layers/{}/diff", layer(7))),
            true
        )]
    );
}

/// containerd 2.2's parallel unpack prepares a layer without its parent: the overlay mount that
/// names only the upper dir makes its applier keep whiteouts (containerd's bindToOverlay).
#[test]
fn a_parallel_unpack_extraction_gets_an_upper_dir_only_overlay() {
    let layout = Layout::new("/s");
    let labels = [(LABEL_PARENT_CHAIN, "sha256:00")];
    let m = describe_mounts(&layout, &row(5, SnapshotKind::Active, &labels), &[]);
    assert_eq!(m[0].kind, "overlay");
    assert!(m[0]
        .options
        .contains(&"upperdir=/s/snapshots/5/fs".to_string()));
    assert!(!m[0].options.iter().any(|o| o.starts_with("lowerdir=")));
}

/// containerd 1.6's `mount.All` passes the options to mount(2), which takes one page; over
/// `pagesize - 512` it makes the lowerdirs relative to their common parent dir first
/// (mount_linux.go compactLowerdirOption). A 500-layer container must fit after that, under a
/// store root as long as containerd's own.
#[test]
fn five_hundred_layers_fit_in_a_page_as_containerd_compacts_them() {
    let layout = Layout::new("/var/lib/containerd/io.containerd.snapshotter.v1.lamina/root");
    // Ids as a long-lived store has them: thousands of snapshots before this image.
    let chain: Vec<(i64, LayerKey)> = (0..500)
        .rev()
        .map(|i| (20_000 + i, layer(i as u32)))
        .collect();
    let m = describe_mounts(&layout, &row(30_000, SnapshotKind::Active, &[]), &chain);
    let data = compacted_mount_data(&m[0].options);
    assert!(data.len() < 4096, "{} bytes", data.len());
}

/// containerd's compactLowerdirOption, then its option-to-data join.
fn compacted_mount_data(options: &[String]) -> String {
    let mut options = options.to_vec();
    let size: usize = options.iter().map(|o| o.len()).sum();
    if size >= 4096 - 512 {
        let i = options
            .iter()
            .position(|o| o.starts_with("lowerdir="))
            .unwrap();
        let dirs: Vec<String> = options[i]["lowerdir=".len()..]
            .split(':')
            .map(str::to_string)
            .collect();
        let (min, max) = (dirs.iter().min().unwrap(), dirs.iter().max().unwrap());
        let common = min
            .bytes()
            .zip(max.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        // Go's path.Dir of the common prefix: up to its last '/'.
        let prefix = &min[..common];
        let common = prefix[..prefix.rfind('/').unwrap()].to_string() + "/";
        let rel: Vec<&str> = dirs.iter().map(|d| &d[common.len()..]).collect();
        options.remove(i);
        options.push(format!("lowerdir={}", rel.join(":")));
    }
    options.join(",")
}
