use super::*;
use crate::digest::Digest;
use crate::image::{media_types as mt, Platform};

fn member(reference: &str, raw: &[u8], platform: &str) -> ListMember {
    let mut descriptor = Descriptor::new(mt::OCI_MANIFEST, Digest::of_bytes(raw), raw.len() as u64);
    descriptor.platform = Some(Platform::parse(platform).unwrap());
    ListMember {
        reference: reference.into(),
        descriptor,
        raw: raw.to_vec(),
    }
}

#[test]
fn a_list_is_saved_amended_listed_in_docker_s_order_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let list = "example.com/app:1";
    assert!(store.manifest_list(list).unwrap().is_empty());
    // `app:x` sorts before `app/y` once ':' is '-' and '/' is '_' (docker's file names), not
    // as the references themselves sort
    let a = member("example.com/app/y:1", b"{\"a\":1}", "linux/amd64");
    let b = member("example.com/app:x", b"{\"b\":2}", "linux/arm64/v8");
    store
        .save_manifest_list(list, &[a.clone(), b.clone()])
        .unwrap();
    assert_eq!(store.manifest_list(list).unwrap(), [b.clone(), a.clone()]);
    // the same member again replaces it; another list is another list
    let mut b2 = b.clone();
    b2.descriptor.platform = Some(Platform::parse("linux/arm64/v9").unwrap());
    store
        .save_manifest_list(list, std::slice::from_ref(&b2))
        .unwrap();
    assert_eq!(store.manifest_list(list).unwrap(), [b2, a.clone()]);
    store
        .save_manifest_list("example.com/other:1", &[a])
        .unwrap();
    // survives reopening (it is in the database, not in memory)
    drop(store);
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(store.manifest_list(list).unwrap().len(), 2);
    assert!(store.remove_manifest_list(list).unwrap());
    assert!(!store.remove_manifest_list(list).unwrap());
    assert!(store.manifest_list(list).unwrap().is_empty());
    assert_eq!(store.manifest_list("example.com/other:1").unwrap().len(), 1);
}
