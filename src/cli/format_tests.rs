use super::*;

const FIELDS: &[&str] = &["Repository", "Tag", "ID", "Size"];

fn rec(repo: &str, tag: &str, id: &str, size: &str) -> Record {
    vec![
        ("Repository", repo.to_string()),
        ("Tag", tag.to_string()),
        ("ID", id.to_string()),
        ("Size", size.to_string()),
    ]
}

fn headers() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([("Repository", "REPOSITORY"), ("ID", "IMAGE ID")])
}

#[test]
fn templates_render_like_docker() {
    let rows = [
        rec("debian", "gzip", "2dd9a87c1263", "262MB"),
        rec("busybox", "latest", "0123456789ab", "4.3MB"),
    ];
    let cases: &[(&str, &str)] = &[
        ("{{.Repository}}:{{.Tag}}", "debian:gzip\nbusybox:latest\n"),
        ("{{ .ID }}", "2dd9a87c1263\n0123456789ab\n"),
        (
            "{{.ID}}\\t{{.Size}}",
            "2dd9a87c1263\t262MB\n0123456789ab\t4.3MB\n",
        ),
        (
            "id={{json .ID}}",
            "id=\"2dd9a87c1263\"\nid=\"0123456789ab\"\n",
        ),
        (
            "table {{.Repository}}\\t{{.ID}}",
            "REPOSITORY   IMAGE ID\ndebian       2dd9a87c1263\nbusybox      0123456789ab\n",
        ),
        // A header without a known name is the field name in capitals; short columns pad to 10.
        (
            "table {{.Tag}}\\t{{.Size}}",
            "TAG       SIZE\ngzip      262MB\nlatest    4.3MB\n",
        ),
    ];
    for (format, want) in cases {
        let t = Template::parse(format, FIELDS).unwrap();
        assert_eq!(t.render(&rows, &headers()), *want, "{format}");
    }
}

#[test]
fn json_prints_one_object_per_row_with_every_field() {
    let t = Template::parse("json", FIELDS).unwrap();
    let out = t.render(&[rec("a", "b", "c", "1B")], &headers());
    assert_eq!(
        out,
        "{\"ID\":\"c\",\"Repository\":\"a\",\"Size\":\"1B\",\"Tag\":\"b\"}\n"
    );
    let t = Template::parse("{{json .}}", FIELDS).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(t.render(&[rec("a", "b", "c", "1B")], &headers()).trim()).unwrap();
    assert_eq!(v["Tag"], "b");
}

#[test]
fn bad_templates_are_errors_not_empty_output() {
    for (format, what) in [
        ("{{.Nope}}", "no field"),
        ("{{.ID", "unclosed"),
        ("{{if .ID}}x{{end}}", "unsupported"),
        ("{{range .}}", "unsupported"),
    ] {
        let err = Template::parse(format, FIELDS).unwrap_err().to_string();
        assert!(err.contains(what), "{format}: {err}");
    }
}

#[test]
fn align_pads_every_cell_but_the_last() {
    let lines = vec!["a\tbbbbbbbbbbbbbb\tc".to_string(), "dd\te\tf".to_string()];
    assert_eq!(
        align(&lines),
        "a         bbbbbbbbbbbbbb   c\ndd        e                f\n"
    );
}

#[test]
fn utc_time_reads_like_docker() {
    assert_eq!(utc_time(0), "1970-01-01 00:00:00 +0000 UTC");
    assert_eq!(utc_time(951868800 + 3661), "2000-03-01 01:01:01 +0000 UTC");
}
