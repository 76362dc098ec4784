//! Checks on the one-line messages lamina prints (`lamina: pull R: manifest for R not found: …`):
//! a wrapper adds context, the error says what failed, and neither repeats the other.

/// The part of `message` said twice in a row, if any: two equal `: `-separated segments side by
/// side (`invalid reference "X": invalid reference "X": …`, `unauthorized: unauthorized: …`), or a
/// segment that ends with the next one (`pull R: R: …`, `load DIR:latest: latest: …`).
pub fn repeated_part(message: &str) -> Option<String> {
    let parts: Vec<&str> = message.split(": ").collect();
    parts.windows(2).find_map(|w| {
        let (a, b) = (w[0].trim(), w[1].trim());
        let repeats = !b.is_empty()
            && (a == b
                || [' ', ':', '/', '@']
                    .iter()
                    .any(|sep| a.ends_with(&format!("{sep}{b}"))));
        repeats.then(|| b.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::repeated_part;

    #[test]
    fn finds_the_repeats_issue_12_names() {
        for m in [
            r#"tag a B::C: invalid reference "B::C": invalid reference "B::C": uppercase"#,
            "pull x: example.com: unauthorized: unauthorized: authentication required",
            "pull example.com/x:1: example.com/x:1: no manifest for platform linux/s390x",
            "manifest for x not found: manifest unknown: manifest unknown",
            "load /oci/multiarch:latest: latest: no manifest for platform linux/s390x",
        ] {
            assert!(repeated_part(m).is_some(), "{m}");
        }
        for m in [
            "pull example.com/x:1: manifest for example.com/x:1 not found: manifest unknown",
            r#"tag a B::C: invalid reference "B::C": repository name must be lowercase"#,
            "load /tmp/x.tar: layer sha256:ab: digest mismatch",
        ] {
            assert_eq!(repeated_part(m), None, "{m}");
        }
    }
}
