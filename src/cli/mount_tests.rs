use super::*;

/// `mounts`' default table cuts the ID to 12 characters (the header keeps its title); a template
/// sees the whole ID and every documented field.
#[test]
fn mounts_table_and_fields() {
    let row: Record = vec![
        ("ID", "0123456789abcdef0123".into()),
        ("Image", "app:1".into()),
        ("ImageID", "sha256:ab".into()),
        ("Driver", "overlay".into()),
        ("Mode", "rw".into()),
        ("CreatedSince", "2 hours ago".into()),
        ("CreatedAt", "2020-01-01 00:00:00 +0000 UTC".into()),
        ("Mountpoint", "/m".into()),
    ];
    let data = records("mount", &[row]);
    let table = Listing::parse(MOUNTS_TABLE).unwrap();
    assert_eq!(
        table.render(&data, MOUNT_TITLES).unwrap(),
        "MOUNT ID       IMAGE     DRIVER    MODE      CREATED       MOUNTPOINT\n\
         0123456789ab   app:1     overlay   rw        2 hours ago   /m\n"
    );
    let all: String = MOUNT_TITLES
        .iter()
        .map(|(k, _)| format!("{{{{.{k}}}}}|"))
        .collect();
    assert_eq!(
        Listing::parse(&all).unwrap().render(&data, MOUNT_TITLES).unwrap(),
        "0123456789abcdef0123|app:1|sha256:ab|overlay|rw|2 hours ago|2020-01-01 00:00:00 +0000 UTC|/m|\n"
    );
}
