use super::*;

#[test]
fn relative_and_absolute_http_targets_are_followed() {
    let from = "http://127.0.0.1:5000/v2/x/blobs/sha256:aa";
    assert_eq!(
        redirect_target(from, "/elsewhere?sig=1").unwrap(),
        "http://127.0.0.1:5000/elsewhere?sig=1"
    );
    assert_eq!(
        redirect_target(from, "https://cdn.example/b").unwrap(),
        "https://cdn.example/b"
    );
}

#[test]
fn targets_without_an_http_host_are_refused() {
    let from = "https://registry.example/v2/x/manifests/latest";
    for location in [
        "file:///etc/passwd",
        "data:text/plain,hello",
        "unix:/run/docker.sock",
        "ftp://host/x",
        "http://",
        "javascript:alert(1)",
    ] {
        let e = redirect_target(from, location).expect_err(location);
        let msg = e.to_string();
        assert!(msg.contains("redirect"), "{location}: {msg}");
        assert!(msg.contains("registry.example"), "{location}: {msg}");
    }
}

#[test]
fn only_get_redirect_statuses_count() {
    for s in [301, 302, 303, 307, 308] {
        assert!(is_redirect(s));
    }
    for s in [200, 206, 300, 304, 305, 401, 404] {
        assert!(!is_redirect(s));
    }
}
