use super::*;

fn d(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// The labels containerd 1.6's CRI puts on the Prepare of layer `d(1)` of a 3-layer image.
fn cri() -> Vec<(&'static str, String)> {
    vec![
        (LABEL_CRI_IMAGE_REF, "127.0.0.1:5000/busybox:layered".into()),
        (LABEL_CRI_MANIFEST_DIGEST, d(9)),
        (LABEL_CRI_LAYER_DIGEST, d(1)),
        (
            LABEL_CRI_IMAGE_LAYERS,
            format!("{},{},{}", d(1), d(2), d(3)),
        ),
        (LABEL_SNAPSHOT_REF, d(7)),
    ]
}

#[test]
fn a_labelled_prepare_names_its_layer_image_and_the_layers_above() {
    let layer = CriLayer::from_labels(&labels(&cri())).unwrap().unwrap();
    assert_eq!(layer.image_ref, "127.0.0.1:5000/busybox:layered");
    assert_eq!(layer.reference.domain, "127.0.0.1:5000");
    assert_eq!(layer.reference.path, "busybox");
    assert_eq!(layer.blob.to_string(), d(1));
    let blobs: Vec<String> = layer.blobs.iter().map(|b| b.to_string()).collect();
    assert_eq!(blobs, [d(1), d(2), d(3)]);
    assert_eq!(layer.target.to_string(), d(7));
    // the manifest digest, not the tag: the exact manifest containerd unpacks
    assert_eq!(layer.manifest_ref(), d(9));
}

#[test]
fn what_the_labels_lack_or_get_wrong() {
    let without = |label: &str| -> Vec<(&'static str, String)> {
        cri().into_iter().filter(|(k, _)| *k != label).collect()
    };
    let with = |label: &'static str, value: &str| -> Vec<(&'static str, String)> {
        let mut v = without(label);
        v.push((label, value.to_string()));
        v
    };
    // not a labelled pull at all (ctr's unpack, or CRI with the annotations disabled)
    assert_eq!(
        CriLayer::from_labels(&labels(&without(LABEL_CRI_LAYER_DIGEST))),
        Ok(None)
    );
    assert_eq!(CriLayer::from_labels(&Labels::new()), Ok(None));
    let refused: [(&str, Vec<(&'static str, String)>); 6] = [
        ("no image ref", without(LABEL_CRI_IMAGE_REF)),
        ("no target", without(LABEL_SNAPSHOT_REF)),
        (
            "bad layer digest",
            with(LABEL_CRI_LAYER_DIGEST, "sha256:abc"),
        ),
        ("bad target", with(LABEL_SNAPSHOT_REF, "../x")),
        (
            "bad list item",
            with(LABEL_CRI_IMAGE_LAYERS, &format!("{},x", d(1))),
        ),
        ("bad reference", with(LABEL_CRI_IMAGE_REF, "UPPER/Case:tag")),
    ];
    for (what, pairs) in refused {
        let r = CriLayer::from_labels(&labels(&pairs));
        assert!(r.is_err(), "{what}: {r:?}");
    }
}

#[test]
fn a_short_list_and_a_missing_manifest_still_serve() {
    // the list cut short (before this layer even), no manifest label: the tag is asked for
    let pairs = vec![
        (
            LABEL_CRI_IMAGE_REF,
            "docker.io/library/debian:12".to_string(),
        ),
        (LABEL_CRI_LAYER_DIGEST, d(2)),
        (LABEL_CRI_IMAGE_LAYERS, format!("{},", d(3))),
        (LABEL_SNAPSHOT_REF, d(7)),
    ];
    let layer = CriLayer::from_labels(&labels(&pairs)).unwrap().unwrap();
    let blobs: Vec<String> = layer.blobs.iter().map(|b| b.to_string()).collect();
    assert_eq!(blobs, [d(2), d(3)], "this layer first, each once");
    assert_eq!(layer.manifest, None);
    assert_eq!(layer.manifest_ref(), "12");
}
