use super::*;

fn layout() -> (Layout, MountId, Vec<PathBuf>) {
    let layout = Layout::new("/store");
    let id = MountId::parse("web-1").unwrap();
    let lowers = vec![
        PathBuf::from("/store/layers/b/diff"),
        PathBuf::from("/store/layers/a/diff"),
    ];
    (layout, id, lowers)
}

#[test]
fn a_read_only_one_layer_view_is_a_bind_of_the_layer() {
    let (layout, id, lowers) = layout();
    let one = vec![lowers[1].clone()];
    let p = plan(
        &layout,
        &id,
        one.clone(),
        "/t".into(),
        Driver::Overlay,
        true,
    );
    assert_eq!(p.mount, PlannedMount::BindLayer(one[0].clone()));
    assert_eq!(p.runtime_mounts(), vec![RuntimeMount::bind(&one[0], true)]);
}

#[test]
fn a_writable_overlay_gets_its_own_upper_and_work_dirs() {
    let (layout, id, lowers) = layout();
    let p = plan(
        &layout,
        &id,
        lowers.clone(),
        "/t".into(),
        Driver::Overlay,
        false,
    );
    let PlannedMount::Overlay(spec) = &p.mount else {
        panic!("{p:?}")
    };
    assert_eq!(spec.lowers, lowers, "top first, as given");
    assert_eq!(
        spec.upper,
        Some((
            PathBuf::from("/store/mounts/web-1/upper"),
            PathBuf::from("/store/mounts/web-1/work")
        ))
    );
    let ro = plan(&layout, &id, lowers, "/t".into(), Driver::Overlay, true);
    assert!(matches!(&ro.mount, PlannedMount::Overlay(s) if s.upper.is_none()));
}

#[test]
fn the_copy_driver_binds_its_tree_under_the_mount_dir() {
    let (layout, id, lowers) = layout();
    for readonly in [true, false] {
        let p = plan(
            &layout,
            &id,
            lowers.clone(),
            "/t".into(),
            Driver::Copy,
            readonly,
        );
        let tree = PathBuf::from("/store/mounts/web-1/copy");
        assert_eq!(
            p.runtime_mounts(),
            vec![RuntimeMount::bind(&tree, readonly)]
        );
    }
}
