//! A load that stores its layers in a batch: what a failure in the middle leaves. Unpacking sets
//! owners, so these need root; elsewhere they print SKIP and pass.

use crate::engine::{Engine, Loader, Observer};
use crate::image::Platform;
use crate::store::{FsckOptions, ProblemKind};
use lamina_testkit::env::is_root;
use lamina_testkit::oci::{Compression, Image, Layer, OciBuilder};
use lamina_testkit::tarw::TarWriter;
use std::path::Path;

struct Quiet;
impl Observer for Quiet {}

fn layer(file: &str, data: &[u8]) -> Layer {
    let tar = TarWriter::new().file(file, 0o644, data).finish();
    Layer::new(&tar, Compression::Gzip)
}

fn layer_dirs(store: &Path) -> usize {
    std::fs::read_dir(store.join("layers")).unwrap().count()
}

/// Layers stored by workers before another layer of the image failed its diffID check: renamed
/// into place and recorded (as layers no image uses), so that fsck finds nothing wrong and prune
/// removes them; the parent-dependent ones still staged are discarded.
#[test]
fn a_load_that_fails_records_the_layers_it_stored_and_prune_removes_them() {
    if !is_root() {
        return eprintln!("SKIP: load tests need root (owners)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut layers: Vec<Layer> = (0..6)
        .map(|i| layer(&format!("f{i}"), &vec![b'x'; 4096 * (i + 2)]))
        .collect();
    // Parent-dependent (an implied dir): staged, committed only bottom-up.
    layers.push(layer("etc/implied", b"y"));
    // The smallest, so taken last: every other layer is done when it fails.
    let mut bad = layer("bad", b"");
    bad.diff_id = format!("sha256:{}", "0".repeat(64));
    layers.push(bad);
    let mut oci = OciBuilder::new();
    oci.image(Some("deep"), Image::new(layers));
    let src = tmp.path().join("deep");
    oci.write_layout(&src);
    let root = tmp.path().join("store");
    let mut engine = Engine::open(&root).unwrap();

    let loader = Loader::open(&src.display().to_string(), None).unwrap();
    let platform = Platform::new("linux", "amd64", None);
    assert!(engine.load(&loader, 0, None, &platform, &Quiet).is_err());

    let stored = layer_dirs(&root);
    assert!(stored > 0, "the workers stored some layers first");
    assert_eq!(engine.disk_usage().unwrap().layers.len(), stored);
    // Recorded, not orphans: what fsck says of any layer no image uses.
    let report = engine.fsck(FsckOptions::default()).unwrap();
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.kind == ProblemKind::UnusedLayer),
        "{:?}",
        report.problems
    );
    assert_eq!(report.problems.len(), stored);
    assert_eq!(
        std::fs::read_dir(root.join("tmp"))
            .unwrap()
            .filter(|e| !e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".lock"))
            .count(),
        0,
        "no staging left"
    );
    engine.prune(true).unwrap();
    assert_eq!(layer_dirs(&root), 0);
}
