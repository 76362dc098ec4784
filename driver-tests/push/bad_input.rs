//! What a push refuses: an image that is not there, a registry that refuses the upload (a fake
//! one answering 403, and the real registry in read-only mode), a registry that accepts
//! connections and never answers (given up on within the documented timeouts, with a message
//! naming it). Each exits 1 with one line and changes nothing in the store. (A wrong password:
//! auth.rs.)

use super::{load_debian, servers, state, store};
use crate::registry::custom::{Config, CustomRegistry};
use crate::registry::fixture;
use std::time::{Duration, Instant};

#[test]
fn bad_input_fails_cleanly() {
    let Some(env) = fixture::env() else { return };
    // the default retries: a stall must not be waited out once per retry
    let s = store().env_remove("LAMINA_RETRIES");
    // no such image: the store says so before any registry is asked
    let r = s.fails(&["push", "127.0.0.1:1/nothing:here"]);
    assert!(
        r.stderr.contains("does not exist locally") && r.stderr.contains("nothing:here"),
        "{}",
        r.describe()
    );

    // a registry that refuses every upload
    let port = servers::refusing_registry();
    let name = format!("127.0.0.1:{port}/deb:1");
    load_debian(&env, &s, &name);
    let before = state(&s);
    let r = s.fails(&["push", &name]);
    assert!(
        r.stderr.contains("denied") && r.stderr.lines().count() == 1,
        "{}",
        r.describe()
    );
    assert_eq!(state(&s), before);

    // the real registry, read-only (distribution's maintenance mode)
    let dir = s.scratch("readonly-registry");
    let reg = CustomRegistry::start(
        &dir,
        Config {
            tls: None,
            tls_extra: "",
            storage_extra: "  maintenance:\n    readonly:\n      enabled: true\n",
        },
    );
    let refused = name;
    let name = format!("{}/deb:1", reg.host());
    s.ok(&["tag", &refused, &name]);
    let before = state(&s);
    let r = s.fails(&["push", &name]);
    assert!(
        r.stderr.contains("HTTP 405")
            && r.stderr.contains("read-only")
            && r.stderr.lines().count() == 1,
        "{}",
        r.describe()
    );
    assert_eq!(state(&s), before);

    // a registry that accepts connections and never answers: the TLS handshake (10 s), then,
    // as 127.0.0.1 is an insecure registry, plain HTTP (30 s without an answer), once each
    let port = servers::stalling_server();
    let name = format!("127.0.0.1:{port}/deb:1");
    s.ok(&["tag", &refused, &name]);
    let before = state(&s);
    let started = Instant::now();
    let r = s.fails(&["push", &name]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(38) && took < Duration::from_secs(60),
        "took {took:?}: {}",
        r.describe()
    );
    assert!(
        r.stderr.contains(&format!("127.0.0.1:{port}"))
            && r.stderr.contains("TLS handshake: no answer within 10s")
            && r.stderr.contains("no answer within 30s")
            && r.stderr.lines().count() == 1,
        "{}",
        r.describe()
    );
    assert_eq!(state(&s), before);
}
