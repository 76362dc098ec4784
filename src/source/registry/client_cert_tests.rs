use super::*;

fn write(dir: &Path, name: &str) {
    std::fs::write(dir.join(name), "").expect("write");
}

#[test]
fn pairs_follow_dockers_naming() {
    let d = tempfile::tempdir().expect("tempdir");
    assert!(pairs_in(&d.path().join("missing"))
        .expect("none")
        .is_empty());
    for f in ["ca.crt", "b.cert", "b.key", "a.cert", "a.key"] {
        write(d.path(), f);
    }
    let pairs = pairs_in(d.path()).expect("pairs");
    let names: Vec<(String, String)> = pairs
        .iter()
        .map(|(c, k)| {
            (
                c.file_name().unwrap().to_string_lossy().into(),
                k.file_name().unwrap().to_string_lossy().into(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("a.cert".to_string(), "a.key".to_string()),
            ("b.cert".to_string(), "b.key".to_string())
        ]
    );
}

#[test]
fn an_unpaired_cert_or_key_is_an_error() {
    let d = tempfile::tempdir().expect("tempdir");
    write(d.path(), "client.cert");
    let e = pairs_in(d.path()).expect_err("no key");
    assert!(e.to_string().contains("without its key"), "{e}");
    let d = tempfile::tempdir().expect("tempdir");
    write(d.path(), "client.key");
    let e = pairs_in(d.path()).expect_err("no cert");
    assert!(
        e.to_string().contains("without its client certificate"),
        "{e}"
    );
}

#[test]
fn a_pair_that_is_not_pem_is_an_error_naming_the_file() {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(d.path().join("c.cert"), "nope").expect("write");
    std::fs::write(d.path().join("c.key"), "nope").expect("write");
    let e = find(&[d.path().to_path_buf()]).expect_err("not PEM");
    assert!(e.to_string().contains("c.cert"), "{e}");
}
