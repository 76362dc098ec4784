//! The engine's errors as the CLI prints them (`lamina: WHAT: ERROR`): no part said twice, at any
//! level of the chain (issue 12: `invalid reference "X": invalid reference "X"`, `pull R: R: …`).

use super::*;
use crate::image::Reference;
use lamina_testkit::messages::repeated_part;

/// Every level of `e`'s source chain, shown after `context` as the CLI shows the top one.
fn assert_no_repeats(context: &str, e: &(dyn std::error::Error + 'static)) {
    let mut level: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut first = true;
    while let Some(err) = level {
        let shown = if first {
            format!("{context}: {err}")
        } else {
            err.to_string()
        };
        assert_eq!(repeated_part(&shown), None, "{shown}");
        first = false;
        level = err.source();
    }
}

#[test]
fn errors_do_not_repeat_what_their_wrapper_says() {
    let bad_tag = crate::store::normalize_tag("Bad::REF").unwrap_err();
    let shown = format!("tag a Bad::REF: {}", EngineError::from(bad_tag));
    assert_eq!(
        shown.matches("invalid reference").count(),
        1,
        "said once: {shown}"
    );
    assert_no_repeats(
        "tag a Bad::REF",
        &EngineError::from(crate::store::normalize_tag("Bad::REF").unwrap_err()),
    );
    assert_no_repeats("pull Bad:REF", &Reference::parse("Bad:REF").unwrap_err());
    let no_platform = EngineError::from(SourceError::NoMatchingPlatform {
        name: "example.com/x:1".into(),
        want: "linux/s390x".into(),
        available: vec!["linux/amd64".into()],
    });
    assert_no_repeats("pull example.com/x:1", &no_platform);
    assert_no_repeats(
        "load /tmp/x.tar: x:1",
        &EngineError::from(SourceError::NoMatchingPlatform {
            name: "x:1".into(),
            want: "linux/s390x".into(),
            available: vec![],
        }),
    );
    assert_no_repeats(
        "rmi x",
        &EngineError::from(crate::store::StoreError::NoSuchImage("x".into())),
    );
}
