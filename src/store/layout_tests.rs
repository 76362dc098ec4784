use super::*;

#[test]
fn mount_ids_cannot_leave_the_mounts_dir() {
    for (id, ok) in [
        ("web-1", true),
        ("a.b_c", true),
        ("..", false),
        (".hidden", false),
        ("a/b", false),
        ("", false),
        ("x y", false),
    ] {
        assert_eq!(MountId::parse(id).is_some(), ok, "{id}");
    }
    assert!(MountId::parse(MountId::random().as_str()).is_some());
}

#[test]
fn layer_keys_are_hex_digests_or_flat_caches() {
    let d = Digest::of_bytes(b"layer");
    assert_eq!(LayerKey::of(&d).as_str(), d.hex());
    assert!(LayerKey::flat(&d).is_flat());
    for k in [LayerKey::of(&d), LayerKey::flat(&d)] {
        assert_eq!(LayerKey::parse(k.as_str()), Some(k.clone()));
    }
    for bad in [
        "",
        "..",
        "flat-",
        "flat-../x",
        &d.hex()[1..],
        &d.to_string(),
        "ABCD",
    ] {
        assert_eq!(LayerKey::parse(bad), None, "{bad}");
    }
    let upper = d.hex().to_uppercase();
    assert_eq!(LayerKey::parse(&upper), None);
}

#[test]
fn staged_and_final_layer_dirs_have_one_shape() {
    let layout = Layout::new("/r");
    let d = Digest::of_bytes(b"x");
    let fin = layout.layer(&LayerKey::of(&d));
    let staged = LayerPaths::staged(Path::new("/r/tmp/layer-1"));
    assert_eq!(
        fin.diff(),
        Path::new("/r/layers").join(d.hex()).join("diff")
    );
    assert_eq!(staged.record(), Path::new("/r/tmp/layer-1/layer.json"));
    assert_eq!(fin.tar_split().file_name(), staged.tar_split().file_name());
}
