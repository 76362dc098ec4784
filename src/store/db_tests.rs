use super::*;

#[test]
fn a_store_made_before_prepared_mounts_gets_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let old_schema = SCHEMA.replace(
        "created INTEGER NOT NULL,\n    prepared INTEGER NOT NULL DEFAULT 0",
        "created INTEGER NOT NULL",
    );
    assert_ne!(old_schema, SCHEMA, "the old schema has no prepared column");
    let image = Digest::of_bytes(b"config");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&old_schema).unwrap();
        conn.execute(
            "INSERT INTO images (id, created, loaded, size) VALUES (?1, NULL, 0, 0)",
            params![image.to_string()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO mounts (id, image_id, target, driver, readonly, created)
             VALUES ('old', ?1, '/t', 'overlay', 0, 1)",
            params![image.to_string()],
        )
        .unwrap();
    }
    let mut db = Db::open(&path).unwrap();
    let old = db.mount("old").unwrap().unwrap();
    assert!(
        !old.prepared,
        "rows from before default to mounted by lamina"
    );
    let new = MountRow {
        id: MountId::parse("new").unwrap(),
        prepared: true,
        ..old
    };
    db.insert_mount(&new).unwrap();
    assert!(db.mount("new").unwrap().unwrap().prepared);
    drop(db);
    Db::open(&path).expect("opening again adds nothing twice");
}
