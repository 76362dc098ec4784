//! `lamina search`: the real registry's catalog (no search API there), read over several pages,
//! names matched by substring and printed as `REGISTRY/REPO`; a test server speaking Docker Hub's
//! `/v1/search` for the columns, sorting, description cuts, filters, `--limit` and `--format`; a
//! server that answers neither.

use crate::common::Store;
use crate::push::servers::serve;
use crate::registry::fixture::{self, path_str, Registry};
use std::sync::{Arc, Mutex};

fn store() -> Store {
    Store::new("search")
        .with_docker_config()
        .env_remove("LAMINA_INSECURE_REGISTRIES")
        .env_remove("LAMINA_CERTS_D")
        .env("LAMINA_RETRIES", "1")
}

fn lines(out: &str) -> Vec<&str> {
    out.lines().collect()
}

/// `GET /v2/_catalog` requests in the registry's access log.
fn catalog_requests(reg: &Registry) -> usize {
    let log = reg.data_dir().parent().expect("dir").join("registry.log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("GET /v2/_catalog"))
        .count()
}

#[test]
fn catalog_search_reads_every_page_and_names_repos_as_podman() {
    let Some(env) = fixture::env() else { return };
    let reg = Registry::start(&env, &[]);
    let host = reg.host();
    let s = store().env("LAMINA_CATALOG_PAGE_SIZE", "2");
    let tree = s.scratch("tree");
    std::fs::write(tree.join("hello"), "hello\n").expect("write");
    let first = format!("{host}/aaa/nope:1");
    s.ok(&["import", &path_str(&tree), &first]);
    // in the registry's (sorted) order, two to a page:
    // [aaa/nope alpha/one] [alpha/two beta/one] [gamma/alpha-x zeta/alpha] [zeta/other]
    let repos = [
        "aaa/nope",
        "alpha/one",
        "alpha/two",
        "beta/one",
        "gamma/alpha-x",
        "zeta/alpha",
        "zeta/other",
    ];
    for repo in repos {
        let name = format!("{host}/{repo}:1");
        s.ok(&["tag", &first, &name]);
        s.ok(&["push", "-q", &name]);
    }

    let format = "{{.Name}}|{{.Description}}|{{.StarCount}}|{{.IsOfficial}}|{{.IsAutomated}}";
    let before = catalog_requests(&reg);
    let r = s.ok(&["search", "--format", format, &format!("{host}/alpha")]);
    let want: Vec<String> = ["alpha/one", "alpha/two", "gamma/alpha-x", "zeta/alpha"]
        .iter()
        .map(|n| format!("{host}/{n}||||"))
        .collect();
    assert_eq!(lines(&r.stdout), want, "{}", r.describe());
    assert_eq!(catalog_requests(&reg) - before, 4, "every page read");

    // the limit stops the walk at the page that fills it
    let before = catalog_requests(&reg);
    let r = s.ok(&[
        "search",
        "--limit",
        "3",
        "--format",
        "{{.Name}}",
        &format!("{host}/alpha"),
    ]);
    let want: Vec<String> = ["alpha/one", "alpha/two", "gamma/alpha-x"]
        .iter()
        .map(|n| format!("{host}/{n}"))
        .collect();
    assert_eq!(lines(&r.stdout), want);
    assert_eq!(catalog_requests(&reg) - before, 3);

    // the default table: docker's columns, nothing but the name from a catalog
    let r = s.ok(&["search", &format!("{host}/zeta")]);
    let table = lines(&r.stdout);
    assert_eq!(
        table[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    );
    let rows: Vec<&str> = table[1..].iter().map(|l| l.trim_end()).collect();
    assert_eq!(
        rows,
        [format!("{host}/zeta/alpha"), format!("{host}/zeta/other")]
    );
    // an empty term lists the whole catalog; a stars filter drops what has no stars
    let r = s.ok(&["search", "--format", "{{.Name}}", &format!("{host}/")]);
    assert_eq!(r.stdout.lines().count(), repos.len());
    let r = s.ok(&[
        "search",
        "--filter",
        "stars=1",
        "--format",
        "{{.Name}}",
        &format!("{host}/a"),
    ]);
    assert_eq!(r.stdout, "");
}

const HUB_ANSWER: &str = r#"[
  {"name":"lamina/tools","description":"Tools for lamina\nsecond line","star_count":3,"is_official":false,"is_automated":true},
  {"name":"lamina","description":"The official lamina image, with a description long enough to be cut short","star_count":120,"is_official":true,"is_automated":false},
  {"name":"someone/lamina-fork","description":null,"star_count":0,"is_official":false,"is_automated":false},
  {"name":"bigco/lamina","description":"Automated and starred","star_count":45,"is_official":false,"is_automated":true}
]"#;

/// A search index as Docker Hub's: `/v1/search?q=&n=` answers the first `n` results (a registry
/// too: `/v2/` answers). Returns the port and the queries it was sent.
fn index_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let queries = Arc::new(Mutex::new(Vec::new()));
    let seen = queries.clone();
    let all: Vec<serde_json::Value> = serde_json::from_str(HUB_ANSWER).expect("json");
    let port = serve(move |method, path| {
        if method == "GET" && path == "/v2/" {
            return (200, "{}".into());
        }
        let Some(query) = path.strip_prefix("/v1/search?") else {
            return (
                404,
                r#"{"errors":[{"code":"NOT_FOUND","message":"no route"}]}"#.into(),
            );
        };
        seen.lock().expect("lock").push(query.to_string());
        let n: usize = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("n="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(25);
        let results: Vec<_> = all.iter().take(n).cloned().collect();
        let body =
            serde_json::json!({"num_results": results.len(), "query": query, "results": results});
        (200, body.to_string())
    });
    (port, queries)
}

#[test]
fn index_search_columns_filters_limit_and_format() {
    let (port, queries) = index_server();
    let s = store();
    let term = format!("127.0.0.1:{port}/lamina");
    let fields = "{{.Name}}|{{.Description}}|{{.StarCount}}|{{.IsOfficial}}|{{.IsAutomated}}";
    let search = |args: &[&str]| {
        let mut all = vec!["search"];
        all.extend_from_slice(args);
        all.push(&term);
        s.ok(&all).stdout
    };

    // sorted by stars; descriptions on one line and cut to 45 characters; [OK] marks
    let out = search(&["--format", fields]);
    assert_eq!(
        lines(&out),
        [
            "lamina|The official lamina image, with a descriptio…|120|[OK]|",
            "bigco/lamina|Automated and starred|45||[OK]",
            "lamina/tools|Tools for lamina second line|3||[OK]",
            "someone/lamina-fork||0||",
        ]
    );
    assert_eq!(
        queries.lock().expect("lock").last().map(String::as_str),
        Some("q=lamina&n=25"),
        "the default limit is sent"
    );
    let out = search(&["--no-trunc", "--format", "{{.Description}}"]);
    assert_eq!(
        lines(&out)[0],
        "The official lamina image, with a description long enough to be cut short"
    );
    let out = search(&[]);
    let table = lines(&out);
    assert_eq!(
        table[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    );
    assert!(
        table[1].starts_with("lamina ") && table[1].contains("120") && table[1].contains("[OK]")
    );
    let out = search(&["--format", "json"]);
    let first: serde_json::Value = serde_json::from_str(lines(&out)[0]).expect("json line");
    assert_eq!(first["Name"], "lamina");
    assert_eq!(first["IsOfficial"], "true");
    assert_eq!(first["IsAutomated"], "false");

    // the limit goes to the index, which answers that many
    let out = search(&["--limit", "2", "--format", "{{.Name}}"]);
    assert_eq!(lines(&out), ["lamina", "lamina/tools"]);
    assert_eq!(
        queries.lock().expect("lock").last().map(String::as_str),
        Some("q=lamina&n=2")
    );

    // filters, alone and together
    let names = |filters: &[&str]| {
        let mut args = vec!["--format", "{{.Name}}"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        search(&args)
    };
    assert_eq!(names(&["is-official=true"]), "lamina\n");
    assert_eq!(names(&["stars=4"]), "lamina\nbigco/lamina\n");
    assert_eq!(names(&["is-automated=true", "stars=4"]), "bigco/lamina\n");
    assert_eq!(
        names(&["is-automated=false"]),
        "lamina\nsomeone/lamina-fork\n"
    );

    // bad arguments: docker's messages, exit 1, no result printed
    for (args, msg) in [
        (
            vec!["--limit", "101"],
            "limit 101 is outside the range of [1, 100]",
        ),
        (
            vec!["--limit", "0"],
            "limit 0 is outside the range of [1, 100]",
        ),
        (
            vec!["--filter", "is-official=maybe"],
            "invalid filter 'is-official=maybe'",
        ),
        (vec!["--filter", "color=red"], "invalid filter 'color'"),
    ] {
        let mut all = vec!["search"];
        all.extend(args);
        all.push(&term);
        let r = s.fails(&all);
        assert!(
            r.stderr.contains(msg) && r.stdout.is_empty(),
            "{}",
            r.describe()
        );
    }
}

#[test]
fn a_registry_with_neither_search_nor_catalog_says_what_was_tried() {
    let port = serve(|method, path| match (method, path) {
        ("GET", "/v2/") => (200, "{}".into()),
        _ => (
            404,
            r#"{"errors":[{"code":"NOT_FOUND","message":"nothing here"}]}"#.into(),
        ),
    });
    let s = store();
    let r = s.fails(&["search", &format!("127.0.0.1:{port}/x")]);
    assert_eq!(
        r.stderr,
        format!(
            "lamina: search 127.0.0.1:{port}/x: registry 127.0.0.1:{port} answers neither the \
             search API (GET /v1/search: HTTP 404, not found: nothing here) nor the catalog \
             (GET /v2/_catalog: HTTP 404, not found: nothing here)\n"
        ),
        "{}",
        r.describe()
    );
    // nothing listens at all: the connection error names the registry
    let dead = crate::registry::custom::free_port();
    let r = s.fails(&["search", &format!("127.0.0.1:{dead}/x")]);
    assert!(
        r.stderr.contains(&format!("127.0.0.1:{dead}")),
        "{}",
        r.describe()
    );
}

#[test]
fn a_retry_is_said_on_stderr() {
    // the index answers 503 twice, then the search
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let port = serve(move |method, path| {
        if method == "GET" && path == "/v2/" {
            return (200, "{}".into());
        }
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            return (
                503,
                r#"{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}"#.into(),
            );
        }
        (
            200,
            r#"{"results":[{"name":"found","star_count":1}]}"#.into(),
        )
    });
    let s = store().env("LAMINA_RETRIES", "3");
    let r = s.ok(&[
        "search",
        "--format",
        "{{.Name}}",
        &format!("127.0.0.1:{port}/x"),
    ]);
    assert_eq!(r.stdout, "found\n");
    let retries: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(retries.len(), 2, "{}", r.describe());
    for (i, line) in retries.iter().enumerate() {
        assert!(
            line.starts_with(&format!(
                "GET http://127.0.0.1:{port}/v1/search: HTTP 503; retrying in "
            )) && line.ends_with(&format!("(retry {} of 3)", i + 1)),
            "{line}"
        );
    }
}
