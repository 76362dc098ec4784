use super::*;

#[test]
fn exec_failures_map_to_docker_exit_codes() {
    let cases: &[(&str, Option<i32>)] = &[
        // runc 1.1
        (
            "runc create failed: unable to start container process: exec: \"nope\": executable file not found in $PATH",
            Some(127),
        ),
        (
            "runc create failed: unable to start container process: exec: \"/bin/nope\": stat /bin/nope: no such file or directory",
            Some(127),
        ),
        (
            "runc create failed: unable to start container process: exec: \"/etc/passwd\": permission denied",
            Some(126),
        ),
        // crun 1.8
        (
            "executable file `nope` not found in $PATH: No such file or directory",
            Some(127),
        ),
        ("open executable: Permission denied", Some(126)),
        ("open executable: Operation not permitted", Some(126)),
        // not about the command: lamina's own 125
        ("mount `/proc` to `proc`: Operation not permitted", None),
        ("chdir to `/nope`: No such file or directory", None),
        ("", None),
    ];
    for (message, want) in cases {
        assert_eq!(exec_failure_code(message), *want, "{message}");
    }
}

#[test]
fn runtime_messages_are_read_from_each_log_format() {
    let runc_json = r#"{"level":"error","msg":"runc create failed: exec: \"x\": permission denied","time":"2026-12-05T06:48:47Z"}"#;
    assert_eq!(
        runtime_message(runc_json),
        "runc create failed: exec: \"x\": permission denied"
    );
    let logrus = r#"time="2026-12-05T06:49:01Z" level=error msg="container \"a\" does not exist""#;
    assert_eq!(runtime_message(logrus), "container \"a\" does not exist");
    assert_eq!(
        runtime_message("open executable: Permission denied\n\n"),
        "open executable: Permission denied"
    );
    assert_eq!(runtime_message("one\ntwo\n"), "one; two");
}
