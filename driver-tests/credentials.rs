//! `lamina logout` against the real registry (docker's words, config.json edited in place), and
//! client certificates from `certs.d/HOST:PORT/*.cert|*.key` for push and pull against a
//! distribution registry that requires one (`http.tls.clientcas`).

use crate::common::{run_with_stdin, Store};
use crate::registry::custom::{self, Config, CustomRegistry};
use crate::registry::fixture::{self, path_str, Registry};

fn store() -> Store {
    Store::new("creds")
        .with_docker_config()
        .env_remove("LAMINA_INSECURE_REGISTRIES")
        .env_remove("LAMINA_CERTS_D")
        .env("LAMINA_RETRIES", "1")
}

/// A one-layer image from a two-file tree, named `name`.
fn tiny_image(s: &Store, name: &str) {
    let tree = s.scratch("tree");
    std::fs::write(tree.join("hello"), "hello\n").expect("write");
    std::fs::create_dir_all(tree.join("etc")).expect("mkdir");
    std::fs::write(tree.join("etc/motd"), "motd\n").expect("write");
    s.ok(&["import", &path_str(&tree), name]);
}

fn login(s: &Store, host: &str, password: &str) -> std::process::Output {
    run_with_stdin(
        s.command()
            .args(["login", host, "-u", "lamina", "--password-stdin"]),
        password.as_bytes(),
    )
}

fn config_json(s: &Store) -> serde_json::Value {
    let text = std::fs::read_to_string(s.docker_config().expect("dir").join("config.json"))
        .expect("config.json");
    serde_json::from_str(&text).expect("json")
}

#[test]
fn logout_removes_the_login_and_says_so_as_docker() {
    let Some(env) = fixture::env() else { return };
    let reg = Registry::start(&env, &["--auth"]);
    let host = reg.host();
    let s = store();
    let name = format!("{host}/team/tiny:1");
    tiny_image(&s, &name);

    let out = login(&s, &host, "lamina-pass");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // a key of another tool and another registry's login stay as they are
    let mut v = config_json(&s);
    v["auths"]["other.example:5000"] = serde_json::json!({"auth": "eDp5"});
    v["detachKeys"] = serde_json::json!("ctrl-x");
    std::fs::write(
        s.docker_config().expect("dir").join("config.json"),
        serde_json::to_vec_pretty(&v).expect("json"),
    )
    .expect("write");
    s.ok(&["push", &name]);

    let r = s.ok(&["logout", &host]);
    assert_eq!(r.stdout, format!("Removing login credentials for {host}\n"));
    let v = config_json(&s);
    assert!(v["auths"].get(&host).is_none(), "{v}");
    assert_eq!(v["auths"]["other.example:5000"]["auth"], "eDp5");
    assert_eq!(v["detachKeys"], "ctrl-x");
    // the credentials are gone: the registry wants them again
    let r = s.fails(&["push", &name]);
    assert!(r.stderr.contains("unauthorized"), "{}", r.describe());

    let r = s.ok(&["logout", &format!("https://{host}/v2/")]);
    assert_eq!(r.stdout, format!("Not logged in to {host}\n"));
    let r = s.ok(&["logout"]);
    assert_eq!(r.stdout, "Not logged in to https://index.docker.io/v1/\n");
}

#[test]
fn client_certificates_from_certs_d_for_push_and_pull() {
    let Some(_env) = fixture::env() else { return };
    let s = store();
    let dir = s.scratch("pki");
    let server = custom::self_signed(&dir, "server", "/CN=127.0.0.1");
    let client_ca = custom::self_signed(&dir, "client-ca", "/CN=lamina-client-ca");
    let client = custom::client_cert(&dir, "client", &client_ca);
    let reg_dir = s.scratch("registry");
    let tls_extra = format!("    clientcas:\n      - {}\n", client_ca.0.display());
    let reg = CustomRegistry::start(
        &reg_dir,
        Config {
            tls: Some((&server.0, &server.1)),
            tls_extra: &tls_extra,
            storage_extra: "",
        },
    );
    let host = reg.host();
    // docker's layout: certs.d/HOST:PORT/{ca.crt, NAME.cert, NAME.key}; verification on
    let certs_d = s.scratch("certs.d");
    let host_dir = certs_d.join(&host);
    std::fs::create_dir_all(&host_dir).expect("mkdir");
    std::fs::copy(&server.0, host_dir.join("ca.crt")).expect("ca");
    let s = s
        .env("LAMINA_CERTS_D", &path_str(&certs_d))
        .env("LAMINA_INSECURE_REGISTRIES", "");
    let name = format!("{host}/mtls/tiny:1");
    tiny_image(&s, &name);

    // no client certificate: the registry ends the handshake, and the error says TLS
    let r = s.fails(&["push", &name]);
    assert!(
        r.stderr.contains(&host) && r.stderr.contains("TLS") && r.stderr.lines().count() == 1,
        "{}",
        r.describe()
    );
    // a certificate without its key is refused before any connection, naming the file
    std::fs::copy(&client.0, host_dir.join("client.cert")).expect("cert");
    let r = s.fails(&["push", &name]);
    assert!(r.stderr.contains("client.cert"), "{}", r.describe());

    std::fs::copy(&client.1, host_dir.join("client.key")).expect("key");
    let r = s.ok(&["push", &name]);
    assert!(r.stdout.contains("Pushed"), "{}", r.describe());
    let fresh = store()
        .env("LAMINA_CERTS_D", &path_str(&certs_d))
        .env("LAMINA_INSECURE_REGISTRIES", "");
    fresh.ok(&["pull", &name]);
    let id = |st: &Store| st.ok(&["images", "-q", "--no-trunc", &name]).stdout;
    assert_eq!(id(&fresh), id(&s));
    assert!(!id(&s).trim().is_empty());
}
