//! The engine's operations through its Rust API, on a temporary store: what the CLI and the coming
//! snapshotter server rely on, without the binary. Unpacking sets owners, so these need root (as
//! `make test` and CI run); elsewhere they print SKIP and pass.

use super::*;
use lamina_testkit::env::is_root;
use lamina_testkit::oci::{Compression, Image, Layer, OciBuilder};
use lamina_testkit::tarw::TarWriter;
use std::sync::Mutex;

/// Records the layer events an operation reports.
#[derive(Default)]
struct Events(Mutex<Vec<(usize, LayerStatus)>>);

impl Observer for Events {
    fn layer(&self, e: &LayerEvent) {
        self.0.lock().unwrap().push((e.index, e.status));
    }
}

impl Events {
    /// The final status of each layer, bottom first.
    fn last(&self) -> Vec<LayerStatus> {
        let all = self.0.lock().unwrap();
        let n = all.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
        (0..n)
            .map(|i| all.iter().rev().find(|(j, _)| *j == i).unwrap().1)
            .collect()
    }
}

fn layer(file: &str, data: &[u8]) -> Layer {
    let tar = TarWriter::new().file(file, 0o644, data).finish();
    Layer::new(&tar, Compression::Gzip)
}

/// Two images sharing their bottom layer, in one OCI layout with refs `a` and `b`.
fn layout(dir: &Path) -> PathBuf {
    let base = layer("etc/base", b"shared by both");
    let mut oci = OciBuilder::new();
    oci.image(
        Some("a"),
        Image::new(vec![base.clone(), layer("a", b"only a")]),
    );
    oci.image(Some("b"), Image::new(vec![base, layer("b", b"only b")]));
    let path = dir.join("pair");
    oci.write_layout(&path);
    path
}

/// A fresh store beside the two-image layout: (its temp dir, the layout, the engine).
fn fresh() -> (tempfile::TempDir, PathBuf, Engine) {
    let tmp = tempfile::tempdir().unwrap();
    let src = layout(tmp.path());
    let engine = Engine::open(&tmp.path().join("store")).unwrap();
    (tmp, src, engine)
}

fn load(engine: &mut Engine, spec: &str) -> (LoadedImage, Vec<LayerStatus>) {
    let loader = Loader::open(spec, None).unwrap();
    let events = Events::default();
    let platform = Platform::new("linux", "amd64", None);
    let loaded = engine.load(&loader, 0, None, &platform, &events).unwrap();
    (loaded, events.last())
}

#[test]
fn a_shared_layer_is_stored_once_and_freed_with_its_last_image() {
    if !is_root() {
        return eprintln!("SKIP: engine ops tests need root (owners)");
    }
    let (_tmp, src, mut engine) = fresh();

    let (a, events) = load(&mut engine, &format!("{}:a", src.display()));
    assert_eq!(events, [LayerStatus::Loaded, LayerStatus::Loaded]);
    assert_eq!(a.tags, ["docker.io/library/pair:a"]);
    let (b, events) = load(&mut engine, &format!("{}:b", src.display()));
    assert_eq!(events, [LayerStatus::Exists, LayerStatus::Loaded]);
    let (again, events) = load(&mut engine, &format!("{}:b", src.display()));
    assert_eq!(
        (again.id, events),
        (b.id.clone(), vec![LayerStatus::Exists; 2])
    );

    let names: Vec<Vec<String>> = engine
        .images()
        .unwrap()
        .into_iter()
        .map(|i| i.tags)
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&vec!["pair:a".to_string()]), "{names:?}");
    assert_eq!(engine.disk_usage().unwrap().layers.len(), 3);

    let gone = engine.remove_image("pair:a", false).unwrap();
    assert_eq!(gone.deleted_images, [a.id]);
    assert_eq!(gone.deleted_layers.len(), 1, "only a's own layer goes");
    let gone = engine.remove_image("pair:b", false).unwrap();
    assert_eq!(
        gone.deleted_layers.len(),
        2,
        "the shared layer goes with its last image"
    );
    let err = engine.remove_image("pair:b", false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[test]
fn a_mounted_image_is_in_use_until_unmounted() {
    if !is_root() {
        return eprintln!("SKIP: engine ops tests need root (owners, mounts)");
    }
    let (_tmp, src, mut engine) = fresh();
    load(&mut engine, &format!("{}:a", src.display()));
    let opts = MountOptions {
        readonly: true,
        no_mount: true,
        ..MountOptions::default()
    };
    let m = engine.mount("pair:a", &opts).unwrap();
    let err = engine.remove_image("pair:a", false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse, "{err}");
    engine.unmount(m.id.as_str()).unwrap();
    engine.remove_image("pair:a", false).unwrap();
}
