use super::*;

#[test]
fn parses_instructions() {
    let cases: Vec<(&str, ConfigChange)> = vec![
        (
            r#"CMD ["/bin/sh", "-c", "echo hi"]"#,
            ConfigChange::Cmd(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()]),
        ),
        (
            "CMD echo hi",
            ConfigChange::Cmd(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()]),
        ),
        (
            "env A=1 B=\"two words\"",
            ConfigChange::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
            ]),
        ),
        (
            "ENV A value here",
            ConfigChange::Env(vec![("A".into(), "value here".into())]),
        ),
        ("WORKDIR /srv", ConfigChange::WorkingDir("/srv".into())),
        (
            "EXPOSE 80 53/udp",
            ConfigChange::Expose(vec!["80/tcp".into(), "53/udp".into()]),
        ),
    ];
    for (s, want) in cases {
        assert_eq!(ConfigChange::parse(s).unwrap(), want, "{s}");
    }
    assert!(matches!(
        ConfigChange::parse("RUN x"),
        Err(ChangeError::Unknown(_))
    ));
    assert!(matches!(
        ConfigChange::parse("CMD"),
        Err(ChangeError::Empty { .. })
    ));
}

#[test]
fn applies_env_by_key_and_entrypoint_resets_cmd() {
    let mut c = Map::new();
    c.insert("Env".into(), json!(["PATH=/bin", "A=0"]));
    c.insert("Cmd".into(), json!(["sh"]));
    ConfigChange::parse("ENV A=1 B=2").unwrap().apply(&mut c);
    assert_eq!(c["Env"], json!(["PATH=/bin", "A=1", "B=2"]));
    ConfigChange::parse(r#"ENTRYPOINT ["/init"]"#)
        .unwrap()
        .apply(&mut c);
    assert_eq!(c["Entrypoint"], json!(["/init"]));
    assert!(!c.contains_key("Cmd"));
}
