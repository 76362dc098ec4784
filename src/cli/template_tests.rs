use super::*;
use std::collections::BTreeMap;

fn data() -> Value {
    let labels: BTreeMap<String, Value> = [("b", "2"), ("a", "1"), ("c.d", "3")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::str(v)))
        .collect();
    Value::Struct(
        "test.Image",
        vec![
            ("ID".into(), Value::str("sha256:abc")),
            ("Repository".into(), Value::str("docker.io/library/debian")),
            ("Size".into(), Value::Int(123456)),
            ("Empty".into(), Value::str("")),
            (
                "Tags".into(),
                Value::List(vec![Value::str("a"), Value::str("b")]),
            ),
            ("None".into(), Value::List(vec![])),
            ("Labels".into(), Value::Map(labels)),
            ("Nil".into(), Value::Nil),
            ("Yes".into(), Value::Bool(true)),
            ("Ratio".into(), Value::Float(1.5)),
        ],
    )
}

fn run(t: &str) -> String {
    Template::parse(t)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .execute(&data())
        .unwrap_or_else(|e| panic!("{t}: {e}"))
}

/// What Go's text/template (with docker's functions) prints for each template.
#[test]
fn templates_print_what_go_prints() {
    let cases: &[(&str, &str)] = &[
        ("{{.ID}}", "sha256:abc"),
        ("x {{ .Size }} y", "x 123456 y"),
        ("{{.Ratio}}", "1.5"),
        ("{{.Tags}}", "[a b]"),
        ("{{.Labels}}", "map[a:1 b:2 c.d:3]"),
        ("{{.Nil}}", "<nil>"),
        ("{{.Labels.nope}}", "<no value>"),
        ("{{.Labels.a}}", "1"),
        ("{{index .Labels \"c.d\"}}", "3"),
        ("{{index .Tags 1}}", "b"),
        ("{{if .Empty}}yes{{else}}no{{end}}", "no"),
        ("{{if .Yes}}yes{{end}}", "yes"),
        ("{{if .Empty}}1{{else if .None}}2{{else if .Tags}}3{{else}}4{{end}}", "3"),
        ("{{if not .Empty}}x{{end}}", "x"),
        ("{{if and .Yes .Tags}}both{{end}}", "both"),
        ("{{or .Empty \"dflt\"}}", "dflt"),
        ("{{range .Tags}}<{{.}}>{{end}}", "<a><b>"),
        ("{{range $i, $t := .Tags}}{{$i}}={{$t}} {{end}}", "0=a 1=b "),
        ("{{range $k, $v := .Labels}}{{$k}}:{{$v}},{{end}}", "a:1,b:2,c.d:3,"),
        ("{{range .None}}x{{else}}empty{{end}}", "empty"),
        ("{{range .Tags}}x{{else}}empty{{end}}", "xx"),
        ("{{range .Tags}}{{if eq . \"a\"}}{{continue}}{{end}}{{.}}{{end}}", "b"),
        ("{{range .Tags}}{{.}}{{break}}{{end}}", "a"),
        ("{{range .Tags}}{{$.ID}} {{end}}", "sha256:abc sha256:abc "),
        ("{{with .Labels}}{{.b}}{{end}}", "2"),
        ("{{with .Empty}}x{{else}}none{{end}}", "none"),
        ("{{$x := .Size}}{{$x}}", "123456"),
        ("{{$x := 1}}{{if .Yes}}{{$x = 2}}{{end}}{{$x}}", "2"),
        ("{{json .}}", r#"{"ID":"sha256:abc","Repository":"docker.io/library/debian","Size":123456,"Empty":"","Tags":["a","b"],"None":[],"Labels":{"a":"1","b":"2","c.d":"3"},"Nil":null,"Yes":true,"Ratio":1.5}"#),
        ("{{json .Tags}}", r#"["a","b"]"#),
        ("{{json \"<&>\"}}", r#""<&>""#),
        ("{{upper .Repository}}", "DOCKER.IO/LIBRARY/DEBIAN"),
        ("{{.Repository | upper | lower}}", "docker.io/library/debian"),
        ("{{lower \"ABC\"}}", "abc"),
        ("{{title \"hello wide-world\"}}", "Hello Wide-World"),
        ("{{join .Tags \", \"}}", "a, b"),
        ("{{split .Repository \"/\"}}", "[docker.io library debian]"),
        ("{{index (split .Repository \"/\") 2}}", "debian"),
        ("{{join (split \"a:b:c\" \":\") \"-\"}}", "a-b-c"),
        ("[{{pad .ID 1 2}}]", "[ sha256:abc  ]"),
        ("[{{pad .Empty 1 2}}]", "[]"),
        ("{{truncate .ID 6}}", "sha256"),
        ("{{truncate .ID 60}}", "sha256:abc"),
        ("{{println .ID}}x", "sha256:abc\nx"),
        ("{{print .Size 1 \"a\" \"b\"}}", "123456 1ab"),
        ("{{printf \"%-8s|%5d|%05.1f|%q\" \"ab\" 42 3.14159 \"q\"}}", "ab      |   42|003.1|\"q\""),
        ("{{printf \"%v %s\" .Tags .ID}}", "[a b] sha256:abc"),
        ("{{len .Tags}} {{len .ID}} {{len .Labels}}", "2 10 3"),
        ("{{eq .Size 123456}} {{ne .ID \"x\"}} {{lt 1 2}} {{ge 1.5 .Ratio}} {{eq .ID \"x\" \"sha256:abc\"}}", "true true true true true"),
        ("a  {{- .ID -}}  b", "asha256:abcb"),
        ("{{/* a comment */}}c", "c"),
        ("{{- /* trimmed */ -}}  c", "c"),
        ("{{`raw \\n`}}", "raw \\n"),
        ("{{\"esc\\t\"}}", "esc\t"),
        ("{{(index .Tags 0)}}", "a"),
        ("line1\n{{.ID}}", "line1\nsha256:abc"),
    ];
    for (t, want) in cases {
        assert_eq!(run(t), *want, "{t}");
    }
}

/// Parse errors read as Go's; execution errors name the place and the field.
#[test]
fn errors_read_as_go_s() {
    let parse: &[(&str, &str)] = &[
        ("{{.ID", "template: :1: unclosed action"),
        ("{{if .ID}}x", "template: :1: unexpected EOF"),
        ("{{end}}", "template: :1: unexpected {{end}}"),
        ("{{else}}", "template: :1: unexpected {{else}}"),
        (
            "x\n{{nosuch .ID}}",
            "template: :2: function \"nosuch\" not defined",
        ),
        ("{{if}}x{{end}}", "template: :1: missing value for if"),
        ("{{range}}x{{end}}", "template: :1: missing value for range"),
        ("{{.ID | }}", "template: :1: missing command"),
        ("{{\"open}}", "template: :1: unterminated quoted string"),
        ("{{(.ID}}", "template: :1: unclosed left paren"),
        ("{{.ID)}}", "template: :1: unexpected right paren"),
        (
            "{{%}}",
            "template: :1: unexpected bad character U+0025 '%' in command",
        ),
        ("{{/* open", "template: :1: unclosed comment"),
    ];
    for (t, want) in parse {
        let err = Template::parse(t).expect_err(t);
        assert_eq!(err.0, *want, "{t}");
    }
    let exec: &[(&str, &str)] = &[
        (
            "{{.Nope}}",
            "template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type test.Image",
        ),
        (
            "ab{{.ID.X}}",
            "template: :1:4: executing \"\" at <.ID.X>: can't evaluate field X in type string",
        ),
        ("{{range .ID}}{{end}}", "range can't iterate over sha256:abc"),
        ("{{index .Tags 5}}", "error calling index: index out of range: 5"),
        ("{{upper .ID .ID}}", "wrong number of args for upper: want 1 got 2"),
        ("{{.ID 1}}", "can't give argument to non-function .ID"),
        ("{{$nope}}", "undefined variable: $nope"),
        ("{{lt .ID 1}}", "incompatible types for comparison"),
    ];
    for (t, want) in exec {
        let err = Template::parse(t).unwrap().execute(&data()).expect_err(t);
        assert!(err.0.contains(want), "{t}: {}", err.0);
    }
}

/// docker's header functions keep a column title as it is; `pad` still pads it.
#[test]
fn header_rows_keep_titles() {
    let titles = Value::Map(
        [("ID", "IMAGE ID"), ("Tags", "TAGS")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::str(v)))
            .collect(),
    );
    for (t, want) in [
        (
            "{{upper .ID}}|{{lower .ID}}|{{json .ID}}",
            "IMAGE ID|IMAGE ID|IMAGE ID",
        ),
        (
            "{{join .Tags \",\"}}|{{truncate .ID 2}}|{{title .ID}}",
            "TAGS|IMAGE ID|IMAGE ID",
        ),
        ("[{{pad .ID 1 1}}]", "[ IMAGE ID ]"),
        ("{{.Other}}", "<no value>"),
        // An error stops the header where it happened, as docker ignores it.
        ("a{{.ID}}{{range .ID}}{{end}}b", "aIMAGE ID"),
    ] {
        let out = Template::parse(t).unwrap().execute_header(&titles);
        assert_eq!(out, want, "{t}");
    }
}

#[test]
fn json_escapes_html_only_when_marshalled_as_go_does() {
    let v = Value::Struct(
        "t",
        vec![
            ("A".into(), Value::str("<a&b>")),
            ("L".into(), Value::List(vec![])),
            ("M".into(), Value::Map(BTreeMap::new())),
        ],
    );
    assert_eq!(v.to_json(false), r#"{"A":"<a&b>","L":[],"M":{}}"#);
    assert_eq!(
        v.to_json_indented("    "),
        "{\n    \"A\": \"\\u003ca\\u0026b\\u003e\",\n    \"L\": [],\n    \"M\": {}\n}"
    );
}
