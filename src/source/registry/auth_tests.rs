use super::*;
use std::os::unix::fs::PermissionsExt;

fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
    Challenge {
        scheme: scheme.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn challenges_parse_as_registries_send_them() {
    let cases: Vec<(&str, Vec<Challenge>)> = vec![
        (
            r#"Bearer realm="http://127.0.0.1:4000/token",service="lamina-registry""#,
            vec![ch(
                "bearer",
                &[
                    ("realm", "http://127.0.0.1:4000/token"),
                    ("service", "lamina-registry"),
                ],
            )],
        ),
        (
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull""#,
            vec![ch(
                "bearer",
                &[
                    ("realm", "https://auth.docker.io/token"),
                    ("service", "registry.docker.io"),
                    ("scope", "repository:library/debian:pull"),
                ],
            )],
        ),
        (
            r#"Basic realm="lamina-basic""#,
            vec![ch("basic", &[("realm", "lamina-basic")])],
        ),
        // several challenges in one header, unquoted values, odd spacing and case
        (
            r#"Basic realm="a, b", BEARER  realm = https://x/t , service=svc"#,
            vec![
                ch("basic", &[("realm", "a, b")]),
                ch("bearer", &[("realm", "https://x/t"), ("service", "svc")]),
            ],
        ),
        // escapes inside quoted strings; scopes with several actions
        (
            r#"Bearer realm="r\"q",scope="repository:a/b:pull,push""#,
            vec![ch(
                "bearer",
                &[("realm", "r\"q"), ("scope", "repository:a/b:pull,push")],
            )],
        ),
        ("Basic", vec![ch("basic", &[])]),
        ("", vec![]),
        // an unterminated quote ends the parse without panicking
        (r#"Bearer realm="http://x"#, vec![ch("bearer", &[])]),
    ];
    for (header, want) in cases {
        assert_eq!(parse_challenges(header), want, "{header}");
    }
    assert_eq!(
        parse_challenges(r#"Bearer Realm="x""#)[0].param("realm"),
        Some("x")
    );
}

#[test]
fn hostile_challenges_do_not_panic() {
    for h in [
        "\"",
        "=",
        "===",
        ",,,",
        "Bearer realm=\"\\",
        "a=b=c",
        "\u{ff}\u{fe}",
        "Bearer ,realm",
    ] {
        let _ = parse_challenges(h);
    }
}

fn config_dir(json: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("config.json"), json).unwrap();
    d
}

#[test]
fn config_json_credentials_are_found_as_docker_finds_them() {
    // "lamina:lamina-pass" and "hub:secret:with:colons"
    let json = r#"{
        "auths": {
            "127.0.0.1:5000": {"auth": "bGFtaW5hOmxhbWluYS1wYXNz"},
            "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldDp3aXRoOmNvbG9ucw=="},
            "https://reg.example.com/v2/": {"username": "u", "password": "p"},
            "empty.example": {}
        },
        "HttpHeaders": {"User-Agent": "x"}
    }"#;
    let d = config_dir(json);
    let get = |host: &str| lookup(d.path(), host).unwrap();
    let creds = |u: &str, p: &str| {
        Some(Credentials {
            username: u.into(),
            password: p.into(),
        })
    };
    assert_eq!(get("127.0.0.1:5000"), creds("lamina", "lamina-pass"));
    assert_eq!(get("docker.io"), creds("hub", "secret:with:colons"));
    assert_eq!(
        get("registry-1.docker.io"),
        creds("hub", "secret:with:colons")
    );
    assert_eq!(get("reg.example.com"), creds("u", "p"));
    assert_eq!(get("127.0.0.1:5001"), None);
    assert_eq!(get("empty.example"), None);
}

#[test]
fn bad_config_json_is_an_error_that_names_the_file() {
    let d = config_dir(r#"{"auths": {"h": {"auth": "not base64!"}}}"#);
    let e = lookup(d.path(), "h").unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("base64"), "{e}");
    let d = config_dir(r#"{"auths": {"h": {"auth": "bm9jb2xvbg=="}}}"#); // "nocolon"
    let e = lookup(d.path(), "h").unwrap_err().to_string();
    assert!(e.contains("user:password"), "{e}");
    let d = config_dir("{nope");
    assert!(lookup(d.path(), "h")
        .unwrap_err()
        .to_string()
        .contains("malformed"));
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(lookup(empty.path(), "h").unwrap(), None);
}

#[test]
fn store_writes_docker_format_0600_and_keeps_other_keys() {
    let d = config_dir(
        r#"{"auths": {"http://127.0.0.1:5000/": {"auth": "b2xkOm9sZA=="}}, "psFormat": "x"}"#,
    );
    let creds = Credentials {
        username: "lamina".into(),
        password: "lamina-pass".into(),
    };
    let path = store(d.path(), "127.0.0.1:5000", &creds).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["psFormat"], "x");
    assert_eq!(
        v["auths"]["127.0.0.1:5000"]["auth"],
        "bGFtaW5hOmxhbWluYS1wYXNz"
    );
    assert!(
        v["auths"].get("http://127.0.0.1:5000/").is_none(),
        "old alias dropped"
    );
    assert_eq!(
        lookup(d.path(), "127.0.0.1:5000").unwrap(),
        Some(creds.clone())
    );
    // Docker Hub goes under docker's historical key
    store(d.path(), "docker.io", &creds).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(v["auths"].get(DOCKER_HUB_AUTH_KEY).is_some());
    // a fresh directory is created private
    let fresh = tempfile::tempdir().unwrap();
    let sub = fresh.path().join("docker");
    store(&sub, "h", &creds).unwrap();
    assert_eq!(
        std::fs::metadata(&sub).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn store_refuses_to_clobber_a_config_it_cannot_read() {
    let d = config_dir("[1, 2");
    let creds = Credentials {
        username: "a".into(),
        password: "b".into(),
    };
    assert!(store(d.path(), "h", &creds).is_err());
    assert_eq!(
        std::fs::read_to_string(d.path().join("config.json")).unwrap(),
        "[1, 2"
    );
}

#[test]
fn basic_header_is_base64_of_user_colon_password() {
    let c = Credentials {
        username: "lamina".into(),
        password: "lamina-pass".into(),
    };
    assert_eq!(c.basic_header(), "Basic bGFtaW5hOmxhbWluYS1wYXNz");
    assert!(!format!("{c:?}").contains("lamina-pass"));
}

#[test]
fn erase_removes_every_spelling_of_the_host_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let creds = Credentials {
        username: "u".into(),
        password: "p".into(),
    };
    let path = store(dir.path(), "127.0.0.1:5000", &creds).expect("store");
    // another spelling docker once wrote, another registry, and a key of another tool
    let mut v: Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("json");
    v["auths"]["https://127.0.0.1:5000/v2/"] = serde_json::json!({"auth": "eDp5"});
    v["auths"]["other:1"] = serde_json::json!({"auth": "eDp5"});
    v["psFormat"] = serde_json::json!("table {{.ID}}");
    fs::write(&path, serde_json::to_vec(&v).expect("json")).expect("write");

    assert!(erase(dir.path(), "127.0.0.1:5000").expect("erase"));
    let after: Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("json");
    let keys: Vec<&String> = after["auths"].as_object().expect("auths").keys().collect();
    assert_eq!(keys, ["other:1"]);
    assert_eq!(after["psFormat"], "table {{.ID}}");
    let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(lookup(dir.path(), "127.0.0.1:5000")
        .expect("lookup")
        .is_none());
    // nothing left to remove: the file is not rewritten, and the answer says so
    assert!(!erase(dir.path(), "127.0.0.1:5000").expect("erase"));
    assert!(!erase(&dir.path().join("nowhere"), "x:1").expect("no config"));
}

#[test]
fn erase_refuses_a_config_it_cannot_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("config.json"), "{not json").expect("write");
    let e = erase(dir.path(), "h:1").expect_err("malformed");
    assert!(e.to_string().contains("malformed JSON"), "{e}");
    assert_eq!(
        fs::read_to_string(dir.path().join("config.json")).expect("read"),
        "{not json"
    );
}
