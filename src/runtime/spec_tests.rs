use super::*;
use crate::runtime::write_bundle;
use serde_json::{json, Value};
use std::fs;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageRuntimeConfig {
    ImageRuntimeConfig {
        entrypoint: strings(entrypoint),
        cmd: strings(cmd),
        ..Default::default()
    }
}

fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
    fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\n",
    )
    .expect("passwd");
    fs::write(
        dir.path().join("etc/group"),
        "root:x:0:\nweb:x:33:\nlog:x:4:web\n",
    )
    .expect("group");
    dir
}

#[test]
fn args_follow_dockers_entrypoint_and_cmd_rules() {
    // (Entrypoint, Cmd, override, expected args or None for "no command specified")
    type Case<'a> = (
        &'a [&'a str],
        &'a [&'a str],
        Option<&'a [&'a str]>,
        Option<&'a [&'a str]>,
    );
    let cases: &[Case] = &[
        (&[], &["sh"], None, Some(&["sh"])),
        (&["/entry", "-x"], &[], None, Some(&["/entry", "-x"])),
        (&["/entry"], &["a", "b"], None, Some(&["/entry", "a", "b"])),
        (
            &["/entry"],
            &["a", "b"],
            Some(&["c"]),
            Some(&["/entry", "c"]),
        ),
        (&[], &["sh"], Some(&["ls", "-l"]), Some(&["ls", "-l"])),
        (&[], &[], Some(&["true"]), Some(&["true"])),
        (&[], &["sh"], Some(&[]), Some(&["sh"])),
        (&[], &[], None, None),
        (&[], &[], Some(&[]), None),
    ];
    for (entrypoint, cmd, args_override, want) in cases {
        let cfg = image(entrypoint, cmd);
        let over = args_override.map(strings);
        let got = process_args(&cfg, over.as_deref());
        match want {
            Some(want) => assert_eq!(got.expect("args"), strings(want), "{entrypoint:?} {cmd:?}"),
            None => {
                let err = got.expect_err("no command");
                assert_eq!(err.to_string(), "no command specified");
            }
        }
    }
}

#[test]
fn env_is_dockers_daemon_environment() {
    // (image Env, terminal, expected)
    let path = DEFAULT_PATH_ENV;
    let cases: &[(&[&str], bool, &[&str])] = &[
        (&[], false, &[path, "HOSTNAME=h"]),
        (&[], true, &[path, "HOSTNAME=h", "TERM=xterm"]),
        (&["PATH=/bin"], false, &["PATH=/bin", "HOSTNAME=h"]),
        (
            &["A=1", "PATH=/x", "B=2"],
            false,
            &["PATH=/x", "HOSTNAME=h", "A=1", "B=2"],
        ),
        (&["TERM=vt100"], true, &[path, "HOSTNAME=h", "TERM=vt100"]),
        (&["TERM=vt100"], false, &[path, "HOSTNAME=h", "TERM=vt100"]),
        (&["HOSTNAME"], false, &[path]),
        (&["A=1", "A=2"], false, &[path, "HOSTNAME=h", "A=2"]),
        (&["EMPTY="], false, &[path, "HOSTNAME=h", "EMPTY="]),
    ];
    for (image_env, terminal, want) in cases {
        assert_eq!(
            process_env(&strings(image_env), "h", *terminal),
            strings(want),
            "Env {image_env:?} terminal={terminal}"
        );
    }
}

#[test]
fn working_dir_is_absolute_and_clean() {
    let cases = [
        (None, "/"),
        (Some(""), "/"),
        (Some("/"), "/"),
        (Some("/srv/app/"), "/srv/app"),
        (Some("srv"), "/srv"),
        (Some("/a/./b/../c"), "/a/c"),
        (Some("/../.."), "/"),
    ];
    for (dir, want) in cases {
        assert_eq!(working_dir(dir), PathBuf::from(want), "{dir:?}");
    }
}

fn spec_json(cfg: &ImageRuntimeConfig, opts: &BundleOptions) -> Value {
    let root = rootfs();
    let spec = build_spec(cfg, root.path(), opts).expect("spec");
    serde_json::to_value(&spec).expect("json")
}

fn sorted(v: &Value) -> Vec<String> {
    let mut list: Vec<String> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect();
    list.sort();
    list
}

#[test]
fn spec_has_runc_spec_defaults_and_docker_caps() {
    let cfg = ImageRuntimeConfig {
        env: strings(&["PATH=/bin:/usr/bin", "LANG=C.UTF-8"]),
        cmd: strings(&["/bin/sh", "-c", "echo hello"]),
        working_dir: Some("/srv".into()),
        user: Some("web".into()),
        stop_signal: Some("SIGQUIT".into()),
        ..Default::default()
    };
    let opts = BundleOptions {
        hostname: "box".into(),
        ..Default::default()
    };
    let spec = spec_json(&cfg, &opts);

    let process = &spec["process"];
    assert_eq!(process["terminal"], json!(false));
    assert_eq!(process["args"], json!(["/bin/sh", "-c", "echo hello"]));
    assert_eq!(
        process["env"],
        json!(["PATH=/bin:/usr/bin", "HOSTNAME=box", "LANG=C.UTF-8"])
    );
    assert_eq!(process["cwd"], json!("/srv"));
    assert_eq!(
        process["user"],
        json!({"uid": 33, "gid": 33, "additionalGids": [33, 4]})
    );
    assert_eq!(
        process["rlimits"],
        json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}])
    );
    assert_eq!(process["noNewPrivileges"], json!(false));
    let mut docker_caps: Vec<String> = DOCKER_DEFAULT_CAPS
        .iter()
        .map(|c| {
            serde_json::to_value(c)
                .expect("cap")
                .as_str()
                .expect("str")
                .to_string()
        })
        .collect();
    docker_caps.sort();
    assert_eq!(docker_caps.len(), 14);
    assert!(docker_caps.contains(&"CAP_NET_BIND_SERVICE".to_string()));
    assert!(!docker_caps.contains(&"CAP_SYS_ADMIN".to_string()));
    for set in ["bounding", "effective", "permitted"] {
        assert_eq!(sorted(&process["capabilities"][set]), docker_caps, "{set}");
    }
    for set in ["inheritable", "ambient"] {
        assert!(process["capabilities"].get(set).is_none(), "{set}");
    }

    assert_eq!(spec["ociVersion"], json!("1.0.2-dev"));
    assert_eq!(spec["root"], json!({"path": "rootfs", "readonly": false}));
    assert_eq!(spec["hostname"], json!("box"));
    assert_eq!(
        spec["annotations"],
        json!({"org.opencontainers.image.stopSignal": "SIGQUIT"})
    );
    let mounts: Vec<(&str, &str, &str)> = spec["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| {
            let field = |k: &str| m[k].as_str().expect("mount field");
            (field("destination"), field("type"), field("source"))
        })
        .collect();
    assert_eq!(
        mounts,
        [
            ("/proc", "proc", "proc"),
            ("/dev", "tmpfs", "tmpfs"),
            ("/dev/pts", "devpts", "devpts"),
            ("/dev/shm", "tmpfs", "shm"),
            ("/dev/mqueue", "mqueue", "mqueue"),
            ("/sys", "sysfs", "sysfs"),
            ("/sys/fs/cgroup", "cgroup", "cgroup"),
        ]
    );
    assert_eq!(
        spec["mounts"][2]["options"],
        json!([
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5"
        ])
    );
    let linux = &spec["linux"];
    assert_eq!(
        linux["namespaces"],
        json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}])
    );
    assert_eq!(
        linux["resources"],
        json!({"devices": [{"allow": false, "access": "rwm"}]})
    );
    assert_eq!(linux["maskedPaths"].as_array().map(Vec::len), Some(10));
    assert_eq!(
        linux["readonlyPaths"],
        json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ])
    );
    // Nothing beyond runc spec's linux keys sneaks in (no seccomp, sysctl, uid mappings, cgroupsPath).
    let mut keys: Vec<&str> = linux
        .as_object()
        .expect("linux")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["maskedPaths", "namespaces", "readonlyPaths", "resources"]
    );
}

#[test]
fn options_shape_the_spec() {
    let cfg = ImageRuntimeConfig {
        entrypoint: strings(&["/bin/echo"]),
        cmd: strings(&["default"]),
        hostname: Some("from-image".into()),
        ..Default::default()
    };
    let opts = BundleOptions {
        args_override: Some(strings(&["over", "ride"])),
        readonly_rootfs: true,
        terminal: true,
        hostname: String::new(),
        ..Default::default()
    };
    let spec = spec_json(&cfg, &opts);
    assert_eq!(
        spec["process"]["args"],
        json!(["/bin/echo", "over", "ride"])
    );
    assert_eq!(spec["process"]["terminal"], json!(true));
    assert_eq!(spec["root"]["readonly"], json!(true));
    assert_eq!(spec["hostname"], json!("from-image"));
    assert_eq!(spec["process"]["cwd"], json!("/"));
    assert_eq!(
        spec["process"]["user"],
        json!({"uid": 0, "gid": 0, "additionalGids": [0]})
    );
    assert_eq!(
        spec["process"]["env"],
        json!([DEFAULT_PATH_ENV, "HOSTNAME=from-image", "TERM=xterm"])
    );
    assert_eq!(spec["annotations"], json!({}));

    let no_name = spec_json(&image(&[], &["sh"]), &BundleOptions::default());
    assert_eq!(no_name["hostname"], json!(DEFAULT_HOSTNAME));
}

#[test]
fn run_options_override_the_image_config() {
    let cfg = ImageRuntimeConfig {
        user: Some("web".into()),
        env: strings(&["A=image", "B=image"]),
        entrypoint: strings(&["/entry"]),
        cmd: strings(&["default"]),
        working_dir: Some("/image".into()),
        ..Default::default()
    };
    let opts = BundleOptions {
        entrypoint: Some("/bin/echo".into()),
        user: Some("0:4".into()),
        env: strings(&["B=run", "C=run"]),
        working_dir: Some("/run/../work".into()),
        binds: vec![BindMount::parse("/srv:/data:ro").expect("bind")],
        network: NetworkMode::Host,
        root_path: Some(PathBuf::from("/mnt/c1")),
        ..Default::default()
    };
    let spec = spec_json(&cfg, &opts);
    // --entrypoint drops the image's Cmd as well as its Entrypoint
    assert_eq!(spec["process"]["args"], json!(["/bin/echo"]));
    assert_eq!(
        spec["process"]["user"],
        json!({"uid": 0, "gid": 4, "additionalGids": [4]})
    );
    let env = &spec["process"]["env"];
    assert_eq!(
        env,
        &json!([
            DEFAULT_PATH_ENV,
            "HOSTNAME=lamina",
            "A=image",
            "B=run",
            "C=run"
        ])
    );
    assert_eq!(spec["process"]["cwd"], json!("/work"));
    assert_eq!(spec["root"]["path"], json!("/mnt/c1"));
    let mounts = spec["mounts"].as_array().expect("mounts");
    assert_eq!(
        mounts.last(),
        Some(
            &json!({"destination": "/data", "type": "bind", "source": "/srv",
                     "options": ["rbind", "rprivate", "ro"]})
        )
    );
    let namespaces: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert_eq!(namespaces, ["pid", "ipc", "uts", "mount"]);

    let with_args = BundleOptions {
        entrypoint: Some("/bin/echo".into()),
        args_override: Some(strings(&["a", "b"])),
        ..Default::default()
    };
    assert_eq!(
        spec_json(&cfg, &with_args)["process"]["args"],
        json!(["/bin/echo", "a", "b"])
    );
    // --entrypoint "" clears it: only the caller's arguments are left, and there must be some
    let cleared = BundleOptions {
        entrypoint: Some(String::new()),
        args_override: Some(strings(&["sh"])),
        ..Default::default()
    };
    assert_eq!(spec_json(&cfg, &cleared)["process"]["args"], json!(["sh"]));
    let root = rootfs();
    let nothing = BundleOptions {
        entrypoint: Some(String::new()),
        ..Default::default()
    };
    let err = build_spec(&cfg, root.path(), &nothing).expect_err("no command");
    assert_eq!(err.to_string(), "no command specified");
}

#[test]
fn unknown_user_and_missing_command_fail() {
    let root = rootfs();
    let cfg = ImageRuntimeConfig {
        user: Some("nobody-here".into()),
        cmd: strings(&["sh"]),
        ..Default::default()
    };
    let err = build_spec(&cfg, root.path(), &BundleOptions::default()).expect_err("user");
    assert!(err.to_string().contains("nobody-here"), "{err}");
    let err = build_spec(&image(&[], &[]), root.path(), &BundleOptions::default())
        .expect_err("no command");
    assert_eq!(err.to_string(), "no command specified");
}

#[test]
fn write_bundle_writes_a_stable_config_and_the_rootfs_mountpoint() {
    let root = rootfs();
    let spec =
        build_spec(&image(&[], &["sh"]), root.path(), &BundleOptions::default()).expect("spec");
    let bundle = tempfile::tempdir().expect("tempdir");
    let dir = bundle.path().join("new/bundle");
    write_bundle(&dir, &spec).expect("write");
    let first = fs::read(dir.join("config.json")).expect("read");
    assert!(dir.join("rootfs").is_dir());
    // Rewriting replaces the file and gives the same bytes (capability sets are sorted).
    write_bundle(&dir, &spec).expect("rewrite");
    assert_eq!(fs::read(dir.join("config.json")).expect("read"), first);
    let names: Vec<_> = fs::read_dir(&dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temp files left: {names:?}");

    let parsed: Value = serde_json::from_slice(&first).expect("json");
    let bounding = parsed["process"]["capabilities"]["bounding"].clone();
    assert_eq!(
        sorted(&bounding),
        serde_json::from_value::<Vec<String>>(bounding).expect("list")
    );
    let loaded = oci_spec::runtime::Spec::load(dir.join("config.json")).expect("load");
    assert_eq!(loaded, spec);
}
