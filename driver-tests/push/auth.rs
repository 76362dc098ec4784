//! Push with credentials (basic auth over TLS, bearer tokens), and a wrong password: a failed push
//! exits 1 with one line naming the reason, and changes nothing in the store (see bad_input.rs for
//! the other bad input).

use super::{layer_lines, load_debian, pushed_digest, state, store};
use crate::common::{self, Store};
use crate::registry::fixture::{self, path_str, Registry};

fn write_credentials(s: &Store, host: &str, user_pass_b64: &str) {
    let dir = s.docker_config().expect("docker config");
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{user_pass_b64}"}}}}}}"#),
    )
    .expect("config.json");
}

/// base64("lamina:lamina-pass"), the fixture's user.
const GOOD: &str = "bGFtaW5hOmxhbWluYS1wYXNz";
/// base64("lamina:nope")
const BAD: &str = "bGFtaW5hOm5vcGU=";

#[test]
fn basic_auth_over_tls_and_a_wrong_password() {
    let Some(env) = fixture::env() else { return };
    let _heavy = common::heavy();
    let reg = Registry::start(&env, &["--auth", "--tls"]);
    let certs = path_str(&reg.cert_dir());
    // verification on: the registry's CA comes from --cert-dir
    let s = store().env("LAMINA_INSECURE_REGISTRIES", "");
    let name = format!("{}/sec/deb:1", reg.host());
    load_debian(&env, &s, &name);
    let before = state(&s);

    let r = s.fails(&["push", "--cert-dir", &certs, &name]);
    assert!(r.stderr.contains("unauthorized"), "{}", r.describe());
    write_credentials(&s, &reg.host(), BAD);
    let r = s.fails(&["push", "--cert-dir", &certs, &name]);
    assert!(
        r.stderr.contains("unauthorized") && r.stderr.lines().count() == 1,
        "{}",
        r.describe()
    );
    assert_eq!(state(&s), before, "a failed push changes nothing");

    write_credentials(&s, &reg.host(), GOOD);
    let r = s.ok(&["push", "--cert-dir", &certs, &name]);
    assert!(
        layer_lines(&r).iter().all(|(_, st)| st == "Pushed"),
        "{}",
        r.describe()
    );
    let digest = pushed_digest(&r, "1");
    let fresh = store().env("LAMINA_INSECURE_REGISTRIES", "");
    write_credentials(&fresh, &reg.host(), GOOD);
    fresh.ok(&["pull", "--cert-dir", &certs, &name]);
    let listed = fresh.ok(&["images", "--digests", "--no-trunc"]).stdout;
    assert!(listed.contains(&digest), "{listed}");
}

#[test]
fn bearer_tokens_with_a_mount_scope() {
    let Some(env) = fixture::env() else { return };
    let _heavy = common::heavy();
    let reg = Registry::start(&env, &["--token"]);
    let s = store();
    let name = format!("{}/tok/deb:1", reg.host());
    load_debian(&env, &s, &name);
    let r = s.fails(&["push", &name]);
    assert!(r.stderr.contains("unauthorized"), "{}", r.describe());

    write_credentials(&s, &reg.host(), GOOD);
    let r = s.ok(&["push", &name]);
    assert!(
        layer_lines(&r).iter().all(|(_, st)| st == "Pushed"),
        "{}",
        r.describe()
    );
    let r = s.ok(&["push", &name]);
    assert!(
        layer_lines(&r)
            .iter()
            .all(|(_, st)| st == "Layer already exists"),
        "{}",
        r.describe()
    );
    // the mount needs a token for two repositories (push here, pull there)
    let other = format!("{}/tok/other:1", reg.host());
    s.ok(&["tag", &name, &other]);
    let r = s.ok(&["push", &other]);
    assert!(
        layer_lines(&r)
            .iter()
            .all(|(_, st)| st == "Mounted from tok/deb"),
        "{}",
        r.describe()
    );
}
