use super::*;

#[test]
fn error_bodies_read_as_the_registry_wrote_them() {
    let cases: [(u16, &str, &str); 5] = [
        (
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
            "manifest unknown",
        ),
        (
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"},{"code":"DENIED","message":""}]}"#,
            "unauthorized: authentication required; denied",
        ),
        (500, "", "HTTP 500"),
        (502, "Bad Gateway", "HTTP 502: Bad Gateway"),
        (404, "{\"errors\":[]}", "HTTP 404: {\"errors\":[]}"),
    ];
    for (status, body, want) in cases {
        assert_eq!(parse_error_body(status, body.as_bytes()), want, "{body}");
    }
}

/// What the CLI prints for a registry's refusal never says a thing twice
/// (`unauthorized: unauthorized: …`, `manifest unknown: manifest unknown`).
#[test]
fn refusals_do_not_repeat_the_registry_s_code() {
    let body = |code: &str, message: &str| {
        format!(r#"{{"errors":[{{"code":"{code}","message":"{message}"}}]}}"#)
    };
    let unauthorized = RegistryError::Unauthorized {
        registry: "example.com".into(),
        detail: without_code(
            parse_error_body(
                401,
                body("UNAUTHORIZED", "authentication required").as_bytes(),
            ),
            "unauthorized",
        ),
    };
    let denied = RegistryError::Denied {
        what: "manifest for example.com/x:1".into(),
        message: without_code(
            parse_error_body(
                403,
                body("DENIED", "requested access to the resource is denied").as_bytes(),
            ),
            "denied",
        ),
    };
    let unknown = RegistryError::NotFound {
        what: "manifest for example.com/x:1".into(),
        message: parse_error_body(404, body("MANIFEST_UNKNOWN", "manifest unknown").as_bytes()),
    };
    assert_eq!(
        unauthorized.to_string(),
        "unauthorized: authentication required"
    );
    let token = RegistryError::Token {
        registry: "example.com".into(),
        reason: "realm unreachable".into(),
    };
    for e in [unauthorized, denied, unknown, token] {
        for context in ["pull example.com/x:1", "login example.com"] {
            let shown = format!("{context}: {e}");
            assert_eq!(
                lamina_testkit::messages::repeated_part(&shown),
                None,
                "{shown}"
            );
        }
    }
    // A message that is not the code stays whole.
    assert_eq!(
        without_code("unauthorized".into(), "unauthorized"),
        "unauthorized"
    );
}

#[test]
fn timeouts_are_found_through_the_causes() {
    use std::io::{Error, ErrorKind};
    // SO_RCVTIMEO shows as EAGAIN on Linux; ureq's deadlines as TimedOut; both under ureq's error
    assert!(timed_out(&Error::from(ErrorKind::WouldBlock)));
    let handshake: ureq::Error = Error::new(ErrorKind::TimedOut, "TLS handshake: no answer").into();
    assert!(timed_out(&handshake));
    let refused: ureq::Error = Error::from(ErrorKind::ConnectionRefused).into();
    assert!(!timed_out(&refused));
}
