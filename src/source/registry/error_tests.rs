use super::*;

#[test]
fn error_bodies_read_as_the_registry_wrote_them() {
    let cases: [(u16, &str, &str); 5] = [
        (
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
            "manifest unknown: manifest unknown",
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
