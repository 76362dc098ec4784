use super::*;

fn digest(c: char) -> Digest {
    format!("sha256:{}", c.to_string().repeat(64))
        .parse()
        .unwrap()
}

fn listed(tags: &[&str], digests: &[(&str, char)]) -> Listed {
    Listed {
        id: digest('a'),
        created: None,
        size: 1000,
        mounts: 0,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        digests: digests
            .iter()
            .map(|(r, c)| (r.to_string(), digest(*c)))
            .collect(),
    }
}

fn rows(l: &Listed, need_digest: bool, digest_rows: bool) -> Vec<(String, String, String)> {
    records_of(l, need_digest, digest_rows, false)
        .into_iter()
        .map(|r| {
            let get = |k: &str| r.iter().find(|(f, _)| *f == k).unwrap().1.clone();
            (get("Repository"), get("Tag"), get("Digest"))
        })
        .collect()
}

fn row(repo: &str, tag: &str, digest: &str) -> (String, String, String) {
    (repo.into(), tag.into(), digest.into())
}

/// docker's imageFormatTaggedAndDigest, case by case.
#[test]
fn rows_are_docker_s() {
    let d = |c: char| digest(c).to_string();
    // Two tags, one digest of their repository: one row per tag; with digests, per tag and digest.
    let l = listed(&["app:1", "app:2"], &[("app", 'd')]);
    assert_eq!(
        rows(&l, false, false),
        [row("app", "1", "<none>"), row("app", "2", "<none>")]
    );
    assert_eq!(
        rows(&l, true, true),
        [row("app", "1", &d('d')), row("app", "2", &d('d'))]
    );
    // A repository known only by digest: one row with an empty digest, or one per digest.
    let l = listed(&["app:1"], &[("other", 'e'), ("other", 'f')]);
    assert_eq!(
        rows(&l, false, false),
        [row("app", "1", "<none>"), row("other", "<none>", "")]
    );
    assert_eq!(
        rows(&l, true, true),
        [
            row("app", "1", "<none>"),
            row("other", "<none>", &d('e')),
            row("other", "<none>", &d('f'))
        ]
    );
    // Neither tags nor digests: dangling.
    assert_eq!(
        rows(&listed(&[], &[]), false, false),
        [row("<none>", "<none>", "<none>")]
    );
    // Every docker field is there; CreatedSince is empty for an unknown time (the table says N/A).
    let r = &records_of(&listed(&["app:1"], &[]), false, false, false)[0];
    let names: Vec<&str> = r.iter().map(|(k, _)| *k).collect();
    let mut want: Vec<&str> = TITLES.iter().map(|(k, _)| *k).collect();
    want.sort();
    let mut got = names.clone();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(r.iter().find(|(k, _)| *k == "CreatedSince").unwrap().1, "");
}

/// docker's NewImageFormat.
#[test]
fn image_format_is_docker_s() {
    assert_eq!(image_format(None, false, false), TABLE);
    assert_eq!(image_format(Some("table"), false, true), TABLE_WITH_DIGEST);
    assert_eq!(image_format(None, true, true), "{{.ID}}");
    assert_eq!(image_format(Some("{{.Tag}}"), true, false), "{{.Tag}}");
    assert_eq!(
        image_format(Some("table {{.Tag}}"), false, true),
        "table {{.Tag}}\t{{.Digest}}"
    );
    assert_eq!(
        image_format(Some("table {{.Digest}}"), false, true),
        "table {{.Digest}}"
    );
    assert_eq!(image_format(Some("{{.Tag}}"), false, true), "{{.Tag}}");
}
