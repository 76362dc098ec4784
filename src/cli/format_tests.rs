use super::*;

const TITLES: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("ID", "IMAGE ID"),
    ("Tag", "TAG"),
    ("Size", "SIZE"),
];

fn rows() -> Vec<Value> {
    records(
        "image",
        &[
            vec![
                ("Repository", "debian".into()),
                ("Tag", "gzip".into()),
                ("ID", "2dd9a87c1263".into()),
                ("Size", "262MB".into()),
            ],
            vec![
                ("Repository", "busybox".into()),
                ("Tag", "latest".into()),
                ("ID", "0123456789ab".into()),
                ("Size", "4.3MB".into()),
            ],
        ],
    )
}

fn render(format: &str) -> String {
    Listing::parse(format)
        .unwrap()
        .render(&rows(), TITLES)
        .unwrap()
}

/// What docker prints for each format over the same two rows.
#[test]
fn listings_render_like_docker() {
    let cases: &[(&str, &str)] = &[
        ("{{.Repository}}:{{.Tag}}", "debian:gzip\nbusybox:latest\n"),
        ("{{.ID}}\\t{{.Size}}", "2dd9a87c1263\t262MB\n0123456789ab\t4.3MB\n"),
        (
            "table {{.Repository}}\\t{{.ID}}",
            "REPOSITORY   IMAGE ID\ndebian       2dd9a87c1263\nbusybox      0123456789ab\n",
        ),
        // Short columns pad to 10; the header is the template run over the titles.
        ("table {{.Tag}}\\t{{.Size}}", "TAG       SIZE\ngzip      262MB\nlatest    4.3MB\n"),
        ("table {{.Repository}}:{{.Tag}}", "REPOSITORY:TAG\ndebian:gzip\nbusybox:latest\n"),
        ("table {{upper .Tag}}", "TAG\nGZIP\nLATEST\n"),
        // An empty last column leaves the padding of the one before, as Go's tabwriter does.
        ("table {{.Tag}}\\t", "TAG       \ngzip      \nlatest    \n"),
        (
            "{{json .}}",
            "{\"ID\":\"2dd9a87c1263\",\"Repository\":\"debian\",\"Size\":\"262MB\",\"Tag\":\"gzip\"}\n\
             {\"ID\":\"0123456789ab\",\"Repository\":\"busybox\",\"Size\":\"4.3MB\",\"Tag\":\"latest\"}\n",
        ),
    ];
    for (format, want) in cases {
        assert_eq!(render(format), *want, "{format}");
    }
    assert_eq!(render("json"), render("{{json .}}"));
    // No rows: a table still has its header.
    let l = Listing::parse("table {{.ID}}").unwrap();
    assert_eq!(l.render(&[], TITLES).unwrap(), "IMAGE ID\n");
}

#[test]
fn bad_templates_are_errors_worded_as_docker_s() {
    let err = Listing::parse("{{.ID").unwrap_err().to_string();
    assert_eq!(err, "template parsing error: template: :1: unclosed action");
    let err = Listing::parse("{{.Nope}}")
        .unwrap()
        .render(&rows(), TITLES)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "template parsing error: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type image"
    );
}

#[test]
fn choose_follows_docker_s_defaults() {
    assert_eq!(choose(None, false, "table {{.X}}"), "table {{.X}}");
    assert_eq!(choose(Some(""), false, "table {{.X}}"), "table {{.X}}");
    assert_eq!(choose(Some("table"), false, "table {{.X}}"), "table {{.X}}");
    assert_eq!(choose(None, true, "table {{.X}}"), "{{.ID}}");
    assert_eq!(choose(Some("table"), true, "table {{.X}}"), "{{.ID}}");
    // -q with a format of one's own: the format wins.
    assert_eq!(choose(Some("{{.Tag}}"), true, "table {{.X}}"), "{{.Tag}}");
}

/// Go's tabwriter: a column exists only across consecutive lines that have a cell there.
#[test]
fn tabwrite_aligns_columns_as_go_s_tabwriter() {
    assert_eq!(
        tabwrite("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n"),
        "aaaa      bbb       d\naa        b         dd\na         \naa        cccc      eee\n"
    );
    assert_eq!(
        tabwrite("a\tbbbbbbbbbbbbbb\tc\n"),
        "a         bbbbbbbbbbbbbb   c\n"
    );
    assert_eq!(align(&["x\ty".to_string()]), "x         y\n");
}

#[test]
fn times_read_like_docker() {
    assert_eq!(utc_time(0), "1970-01-01 00:00:00 +0000 UTC");
    assert_eq!(utc_time(951868800 + 3661), "2000-03-01 01:01:01 +0000 UTC");
    assert_eq!(rfc3339(951868800 + 3661), "2000-03-01T01:01:01Z");
}
