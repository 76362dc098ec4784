//! The metadata database: images, tags, repository digests, layers and mounts.
//!
//! SQLite in WAL mode: every change is one transaction, so a process killed at any instant leaves either
//! the old or the new state. Layer directories are renamed into place *before* their row is written, so a
//! row never names a directory that is not complete; a directory without a row is adopted or removed by
//! the next command that meets it.
//!
//! Refcounts are not stored: a layer's users are the `image_layers` rows that name it, so they can never
//! drift from the truth.
//!
//! This module is private to `store` and holds the only SQL in the crate: each change is one named
//! operation (as containerd's metastore hides bolt), and nothing outside sees the connection.

use super::fserror::{FsCause, FsError};
use super::layout::{LayerKey, MountId};
use super::snapshots::{NewSnapshot, SnapshotCommit, SnapshotKind, SnapshotRefusal, SnapshotRow};
use crate::digest::Digest;
use crate::sys::{fsinfo, sqlite};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("metadata database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("metadata database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The filesystem refused (full, read-only, not ours): said in those words, not SQLite's.
    #[error(transparent)]
    Filesystem(FsError),
    #[error("metadata database holds a malformed value {value:?} in {column}")]
    Corrupt { column: &'static str, value: String },
    #[error("image {0} gained a mount while being deleted")]
    GainedMount(Digest),
}

pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// How long a command waits for another one's write transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes set aside beside meta.db (`meta.db-reserve`) for the database to grow into when the
/// filesystem is full: a write transaction that fails for lack of space deletes it and runs again,
/// so that `rmi` and `prune` can record what they free on a disk full to the last byte. Commands
/// re-create it when there is room. 127 WAL frames of a 4 KiB page: more than any removal needs.
const RESERVE_BYTES: u64 = 512 << 10;

/// `read_only`: the store's filesystem is mounted read-only, so nothing is written (a database made
/// by an older lamina, missing tables or columns, cannot be read there).
fn set_up(conn: &Connection, read_only: bool) -> rusqlite::Result<()> {
    // Keep the WAL and shared-memory files when the last connection closes (see `sys::sqlite`).
    sqlite::persist_wal(conn)?;
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") && !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if read_only {
        return Ok(());
    }
    conn.execute_batch(SCHEMA)?;
    add_missing_columns(conn)
}

/// Columns added after a store's database was made get added with their defaults, under the write
/// lock, so that two processes opening an old store do not both add them.
fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    let missing = |conn: &Connection| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT COUNT(*) = 0 FROM pragma_table_info('mounts') WHERE name = 'prepared'",
            [],
            |r| r.get(0),
        )
    };
    if !missing(conn)? {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let added = missing(conn).and_then(|m| {
        if m {
            conn.execute_batch(
                "ALTER TABLE mounts ADD COLUMN prepared INTEGER NOT NULL DEFAULT 0",
            )?;
        }
        Ok(())
    });
    match added {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS layers (
    key TEXT PRIMARY KEY,          -- directory name under layers/
    diff_id TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    parent_dependent INTEGER NOT NULL,
    size INTEGER NOT NULL,         -- bytes of regular files
    entries INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS layers_by_diff ON layers(diff_id);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,           -- config digest
    created TEXT,                  -- from the config
    loaded INTEGER NOT NULL,       -- unix seconds
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,     -- 0 = bottom
    layer_key TEXT NOT NULL REFERENCES layers(key),
    PRIMARY KEY (image_id, position)
);
CREATE INDEX IF NOT EXISTS image_layers_by_layer ON image_layers(layer_key);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,         -- full reference, e.g. docker.io/library/debian:gzip
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS repo_digests (
    repository TEXT NOT NULL,      -- full name without tag
    digest TEXT NOT NULL,          -- manifest digest
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    PRIMARY KEY (repository, digest)
);
CREATE TABLE IF NOT EXISTS mounts (
    id TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id),
    target TEXT NOT NULL,
    driver TEXT NOT NULL,
    readonly INTEGER NOT NULL,
    created INTEGER NOT NULL,
    prepared INTEGER NOT NULL DEFAULT 0  -- --no-mount: the runtime mounts it, maybe where we cannot see
);
CREATE TABLE IF NOT EXISTS manifest_list_members (
    list TEXT NOT NULL,            -- full reference of a local manifest list (`manifest create`)
    member TEXT NOT NULL,          -- full reference of one image of it, as given
    descriptor TEXT NOT NULL,      -- its manifest's descriptor (platform included), JSON
    raw BLOB NOT NULL,             -- its manifest, as the registry served it
    PRIMARY KEY (list, member)
);
CREATE TABLE IF NOT EXISTS removals (  -- removals decided but maybe not done (see store::gc)
    kind TEXT NOT NULL,            -- 'layer' (name = layer key) or 'blob' (name = digest)
    name TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS snapshots (    -- containerd's, served by `lamina snapshotter`
    id INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: names snapshots/<id>/ and l/<id in base 36>
    key TEXT NOT NULL UNIQUE,             -- the key of an active snapshot or view, the name of a committed one
    kind TEXT NOT NULL,                   -- active, view or committed
    parent INTEGER REFERENCES snapshots(id),
    layer_key TEXT REFERENCES layers(key), -- committed: the layer it is; active: its commit's, stored
    chain_id TEXT,                        -- committed: the chainID of its layers, as containerd names it
    labels TEXT NOT NULL,                 -- JSON object
    created INTEGER NOT NULL,             -- unix nanoseconds
    updated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_by_parent ON snapshots(parent);
CREATE INDEX IF NOT EXISTS snapshots_by_layer ON snapshots(layer_key);
";

pub(super) struct Db {
    conn: Connection,
    path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct LayerRow {
    pub key: LayerKey,
    pub diff_id: Digest,
    pub chain_id: Digest,
    pub parent_dependent: bool,
    pub size: u64,
    pub entries: u64,
}

#[derive(Debug, Clone)]
pub struct ImageRow {
    pub id: Digest,
    pub created: Option<String>,
    pub loaded: i64,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct MountRow {
    pub id: MountId,
    pub image_id: Digest,
    pub target: String,
    pub driver: String,
    pub readonly: bool,
    pub created: i64,
    /// Made with `--no-mount`: the runtime mounts it itself, often in a mount namespace of its own, so
    /// that the host not seeing it mounted does not make it stale.
    pub prepared: bool,
}

/// What one load records about an image, in one transaction.
pub struct NewImage<'a> {
    pub row: &'a ImageRow,
    /// Its layers, bottom first.
    pub layers: &'a [LayerRow],
    /// Full names to point at it.
    pub tags: &'a [String],
    /// (repository, manifest digest) it came with.
    pub repo_digest: Option<(&'a str, &'a Digest)>,
}

fn digest_col(column: &'static str, s: String) -> Result<Digest> {
    s.parse().map_err(|_| DbError::Corrupt { column, value: s })
}

fn key_col(s: String) -> Result<LayerKey> {
    LayerKey::parse(&s).ok_or(DbError::Corrupt {
        column: "layers.key",
        value: s,
    })
}

fn mount_id_col(s: String) -> Result<MountId> {
    MountId::parse(&s).ok_or(DbError::Corrupt {
        column: "mounts.id",
        value: s,
    })
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const LAYER_COLS: &str = "key, diff_id, chain_id, parent_dependent, size, entries";
const MOUNT_COLS: &str = "id, image_id, target, driver, readonly, created, prepared";

impl Db {
    pub(super) fn open(path: &Path) -> Result<Db> {
        let read_only = fsinfo::space(path.parent().unwrap_or(path)).is_ok_and(|s| s.read_only);
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::default()
        };
        let open_err = |source| DbError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = match Connection::open_with_flags(path, flags) {
            Ok(c) => c,
            // No connection to ask for the errno: look at the file and its filesystem instead.
            Err(e) => {
                return Err(match diagnose(path) {
                    Some(cause) => DbError::Filesystem(FsError::new(cause, path, opening(path))),
                    None => open_err(e),
                })
            }
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let db = Db {
            conn,
            path: path.to_path_buf(),
        };
        // Switching a new database to WAL takes an exclusive lock, and SQLite returns SQLITE_BUSY for
        // it without calling the busy handler: two processes creating one store at the same instant
        // must wait for each other here themselves.
        let started = std::time::Instant::now();
        loop {
            match set_up(&db.conn, read_only) {
                Ok(()) => break,
                Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => {
                    return Err(match db.refusal(&e, || opening(path)) {
                        Some(f) => DbError::Filesystem(f),
                        None => open_err(e),
                    })
                }
            }
        }
        if !read_only {
            keep_reserve(&reserve_path(path));
        }
        Ok(db)
    }

    /// The filesystem's refusal behind a failed SQLite call, if that is what it was (read at once:
    /// the errno is the connection's last).
    fn refusal(&self, e: &rusqlite::Error, doing: impl FnOnce() -> String) -> Option<FsError> {
        use rusqlite::ErrorCode::*;
        let code = e.sqlite_error_code()?;
        if !matches!(code, DiskFull | ReadOnly | CannotOpen | SystemIoFailure) {
            return None;
        }
        let cause = FsCause::from_errno(sqlite::system_errno(&self.conn), &self.path).or_else(
            || match code {
                DiskFull => FsCause::from_errno(libc::ENOSPC, &self.path),
                _ => diagnose(&self.path),
            },
        )?;
        Some(FsError::new(cause, &self.path, doing()))
    }

    /// Runs `f` in one IMMEDIATE transaction (taking the write lock up front, so two writers queue
    /// instead of failing with SQLITE_BUSY halfway).
    ///
    /// When the filesystem is full, `f` runs once more (the failed transaction was rolled back)
    /// after making room for it: the WAL's frames are checkpointed into meta.db, so that the next
    /// transaction starts the WAL over, writing into the blocks it already has (the WAL file is
    /// never deleted, see `set_up`), and the reserve beside the database is given up.
    /// A failed update as the filesystem's refusal (no space, read-only, denied) where it is one.
    fn in_plain_words(&self, e: rusqlite::Error) -> DbError {
        let doing = || format!("updating the metadata database {}", self.path.display());
        match self.refusal(&e, doing) {
            Some(refused) => DbError::Filesystem(refused),
            None => DbError::Sql(e),
        }
    }

    fn write<T>(&mut self, f: impl Fn(&Transaction) -> Result<T>) -> Result<T> {
        match self.write_once(&f) {
            Err(DbError::Filesystem(e)) if e.cause.kind() == super::ErrorKind::NoSpace => {
                let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)");
                release_reserve(&reserve_path(&self.path));
                self.write_once(&f)
            }
            other => other,
        }
    }

    fn write_once<T>(&mut self, f: &impl Fn(&Transaction) -> Result<T>) -> Result<T> {
        let attempt = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })();
        match attempt {
            Err(DbError::Sql(e)) => {
                let refused = self.in_plain_words(e);
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Err(refused)
            }
            other => other,
        }
    }

    // ---- checks

    /// What SQLite's own checks find wrong (integrity, then rows naming missing rows); empty when sound.
    pub(super) fn integrity_problems(&self) -> Result<Vec<String>> {
        let integrity: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
        let mut out = vec![];
        if integrity != "ok" {
            out.push(integrity);
        }
        let mut st = self.conn.prepare("PRAGMA foreign_key_check")?;
        let bad: Vec<String> = st
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<_>>()?;
        out.extend(
            bad.into_iter()
                .map(|table| format!("a row of {table} names a missing row")),
        );
        Ok(out)
    }

    // ---- layers

    /// A stored layer usable at this position: the self-contained one keyed by diffID, or the
    /// parent-dependent one keyed by this chainID.
    pub(super) fn find_layer(
        &self,
        diff_id: &Digest,
        chain_id: &Digest,
    ) -> Result<Option<LayerRow>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {LAYER_COLS} FROM layers
                     WHERE diff_id = ?1 AND (parent_dependent = 0 OR chain_id = ?2)
                     ORDER BY parent_dependent LIMIT 1"
                ),
                params![diff_id.to_string(), chain_id.to_string()],
                raw_layer,
            )
            .optional()?
            .map(layer_row)
            .transpose()
    }

    pub(super) fn layers(&self) -> Result<Vec<LayerRow>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {LAYER_COLS} FROM layers ORDER BY key"))?;
        let rows = st.query_map([], raw_layer)?;
        rows.map(|r| layer_row(r?)).collect()
    }

    /// How many images and containerd snapshots use a layer.
    pub(super) fn layer_users(&self, key: &LayerKey) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT (SELECT COUNT(DISTINCT image_id) FROM image_layers WHERE layer_key = ?1)
                  + (SELECT COUNT(*) FROM snapshots WHERE layer_key = ?1)",
            params![key.as_str()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    // ---- images

    pub(super) fn image(&self, id: &Digest) -> Result<Option<ImageRow>> {
        self.conn
            .query_row(
                "SELECT id, created, loaded, size FROM images WHERE id = ?1",
                params![id.to_string()],
                raw_image,
            )
            .optional()?
            .map(image_row)
            .transpose()
    }

    pub(super) fn images(&self) -> Result<Vec<ImageRow>> {
        let mut st = self
            .conn
            .prepare("SELECT id, created, loaded, size FROM images ORDER BY loaded DESC, id")?;
        let rows = st.query_map([], raw_image)?;
        rows.map(|r| image_row(r?)).collect()
    }

    /// Image ids whose hex starts with `prefix` (already validated as lowercase hex).
    pub(super) fn images_by_prefix(&self, prefix: &str) -> Result<Vec<Digest>> {
        let mut st = self
            .conn
            .prepare("SELECT id FROM images WHERE id LIKE ?1 ORDER BY id")?;
        let rows = st.query_map(params![format!("sha256:{prefix}%")], |r| {
            r.get::<_, String>(0)
        })?;
        rows.map(|r| digest_col("images.id", r?)).collect()
    }

    /// Layers of an image, bottom first.
    pub(super) fn image_layers(&self, id: &Digest) -> Result<Vec<LayerRow>> {
        let mut st = self.conn.prepare(
            "SELECT l.key, l.diff_id, l.chain_id, l.parent_dependent, l.size, l.entries
             FROM image_layers il JOIN layers l ON l.key = il.layer_key
             WHERE il.image_id = ?1 ORDER BY il.position",
        )?;
        let rows = st.query_map(params![id.to_string()], raw_layer)?;
        rows.map(|r| layer_row(r?)).collect()
    }

    /// Records an image, its layers (bottom first), its tags and repository digest in one
    /// transaction. Loading an image again keeps its row. Returns the images that lost a tag to it.
    pub(super) fn record_image(&mut self, new: &NewImage) -> Result<Vec<Digest>> {
        self.write(|tx| {
            for l in new.layers {
                insert_layer(tx, l)?;
            }
            let img = new.row;
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO images (id, created, loaded, size) VALUES (?1, ?2, ?3, ?4)",
                params![img.id.to_string(), img.created, img.loaded, img.size as i64],
            )?;
            if inserted == 1 {
                for (i, l) in new.layers.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO image_layers (image_id, position, layer_key) VALUES (?1, ?2, ?3)",
                        params![img.id.to_string(), i as i64, l.key.as_str()],
                    )?;
                }
            }
            let mut untagged = Vec::new();
            for t in new.tags {
                if let Some(old) = set_tag(tx, t, &img.id)? {
                    untagged.push(old);
                }
            }
            if let Some((repository, digest)) = new.repo_digest {
                tx.execute(
                    "INSERT INTO repo_digests (repository, digest, image_id) VALUES (?1, ?2, ?3)
                     ON CONFLICT(repository, digest) DO UPDATE SET image_id = excluded.image_id",
                    params![repository, digest.to_string(), img.id.to_string()],
                )?;
            }
            Ok(untagged)
        })
    }

    /// Deletes an image's rows (it must have no mount) and records the removal of the layers only
    /// it used (which are returned) and of `blobs`, in one transaction. The layers' rows stay until
    /// their dirs are gone (see `store::gc`).
    pub(super) fn delete_image(&mut self, id: &Digest, blobs: &[Digest]) -> Result<Vec<LayerRow>> {
        let layers = self.image_layers(id)?;
        let idstr = id.to_string();
        self.write(|tx| {
            let busy: i64 = tx.query_row(
                "SELECT COUNT(*) FROM mounts WHERE image_id = ?1",
                params![idstr],
                |r| r.get(0),
            )?;
            if busy > 0 {
                return Err(DbError::GainedMount(id.clone()));
            }
            for table in ["tags", "repo_digests", "image_layers"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE image_id = ?1"),
                    params![idstr],
                )?;
            }
            tx.execute("DELETE FROM images WHERE id = ?1", params![idstr])?;
            let mut gone: Vec<LayerRow> = Vec::new();
            for l in &layers {
                if layer_user_count(tx, &l.key)? == 0 && !gone.iter().any(|g| g.key == l.key) {
                    add_removal(tx, "layer", l.key.as_str())?;
                    gone.push(l.clone());
                }
            }
            for b in blobs {
                add_removal(tx, "blob", &b.to_string())?;
            }
            Ok(gone)
        })
    }

    /// Records the removal of every layer no image uses; returns their keys.
    pub(super) fn mark_unused_layers(&mut self) -> Result<Vec<LayerKey>> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO removals (kind, name)
                 SELECT 'layer', key FROM layers
                 WHERE NOT EXISTS (SELECT 1 FROM image_layers WHERE layer_key = layers.key)
                 AND NOT EXISTS (SELECT 1 FROM snapshots WHERE layer_key = layers.key)",
                [],
            )?;
            Ok(())
        })?;
        self.removals("layer")?
            .into_iter()
            .map(key_col)
            .collect::<Result<Vec<_>>>()
    }

    /// Records the removal of a blob (deleted only if nothing refers to it by then).
    pub(super) fn mark_blob_removal(&mut self, d: &Digest) -> Result<()> {
        self.write(|tx| add_removal(tx, "blob", &d.to_string()))
    }

    /// Records the removal of one layer (which is removed only if no image uses it by then).
    pub(super) fn mark_layer_removal(&mut self, key: &LayerKey) -> Result<()> {
        self.write(|tx| add_removal(tx, "layer", key.as_str()))
    }

    /// The names of the removals of `kind` recorded and not yet done.
    pub(super) fn removals(&self, kind: &str) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT name FROM removals WHERE kind = ?1 ORDER BY name")?;
        let rows = st.query_map(params![kind], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A layer's row, by key.
    pub(super) fn layer(&self, key: &LayerKey) -> Result<Option<LayerRow>> {
        self.conn
            .query_row(
                &format!("SELECT {LAYER_COLS} FROM layers WHERE key = ?1"),
                params![key.as_str()],
                raw_layer,
            )
            .optional()?
            .map(layer_row)
            .transpose()
    }

    /// Runs `f` holding the database's write lock (one IMMEDIATE transaction): what it reads through
    /// this connection and the statements below it runs are one atomic step, committed if it
    /// returns Ok and rolled back otherwise.
    pub(super) fn locked<T, E: From<DbError>>(
        &self,
        f: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.in_plain_words(e))?;
        match f() {
            Ok(v) => match self.conn.execute_batch("COMMIT") {
                Ok(()) => Ok(v),
                Err(e) => {
                    let refused = self.in_plain_words(e);
                    let _ = self.conn.execute_batch("ROLLBACK");
                    Err(refused.into())
                }
            },
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Inside [`locked`](Db::locked): forgets a layer's row and its recorded removal.
    pub(super) fn drop_layer_row(&self, key: &LayerKey) -> Result<()> {
        self.conn
            .execute("DELETE FROM layers WHERE key = ?1", params![key.as_str()])?;
        self.drop_removal("layer", key.as_str())
    }

    /// Inside [`locked`](Db::locked), or alone: forgets a recorded removal.
    pub(super) fn drop_removal(&self, kind: &str, name: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM removals WHERE kind = ?1 AND name = ?2",
            params![kind, name],
        )?;
        Ok(())
    }

    /// Records layers (no image uses them yet); rows already there are kept.
    pub(super) fn insert_layers(&self, rows: &[LayerRow]) -> Result<()> {
        let attempt = (|| {
            let tx = self.conn.unchecked_transaction()?;
            for l in rows {
                insert_layer(&tx, l)?;
            }
            tx.commit()?;
            Ok(())
        })();
        match attempt {
            Err(DbError::Sql(e)) => Err(self.in_plain_words(e)),
            other => other,
        }
    }

    // ---- names

    pub(super) fn tag_target(&self, name: &str) -> Result<Option<Digest>> {
        self.conn
            .query_row(
                "SELECT image_id FROM tags WHERE name = ?1",
                params![name],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(|s| digest_col("tags.image_id", s))
            .transpose()
    }

    pub(super) fn tags_of(&self, id: &Digest) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT name FROM tags WHERE image_id = ?1 ORDER BY name")?;
        let rows = st.query_map(params![id.to_string()], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Points a tag at an image.
    pub(super) fn tag(&mut self, name: &str, id: &Digest) -> Result<()> {
        self.write(|tx| set_tag(tx, name, id).map(|_| ()))
    }

    pub(super) fn untag(&mut self, name: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM tags WHERE name = ?1", params![name])?;
            Ok(())
        })
    }

    pub(super) fn digest_target(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<Digest>> {
        self.conn
            .query_row(
                "SELECT image_id FROM repo_digests WHERE repository = ?1 AND digest = ?2",
                params![repository, digest.to_string()],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(|s| digest_col("repo_digests.image_id", s))
            .transpose()
    }

    /// (repository, manifest digest) pairs an image was loaded or pulled with.
    pub(super) fn repo_digests_of(&self, id: &Digest) -> Result<Vec<(String, Digest)>> {
        let mut st = self.conn.prepare(
            "SELECT repository, digest FROM repo_digests WHERE image_id = ?1 ORDER BY repository, digest",
        )?;
        let rows = st.query_map(params![id.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        rows.map(|r| {
            let (repo, d) = r?;
            Ok((repo, digest_col("repo_digests.digest", d)?))
        })
        .collect()
    }

    /// Forgets one `repository@digest` reference (docker's `rmi NAME@sha256:…`).
    pub(super) fn delete_repo_digest(&mut self, repository: &str, digest: &Digest) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM repo_digests WHERE repository = ?1 AND digest = ?2",
                params![repository, digest.to_string()],
            )?;
            Ok(())
        })
    }

    /// Every manifest digest some repository digest names (their blobs are kept).
    pub(super) fn manifest_digests(&self) -> Result<Vec<Digest>> {
        let mut st = self
            .conn
            .prepare("SELECT DISTINCT digest FROM repo_digests ORDER BY digest")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|r| digest_col("repo_digests.digest", r?))
            .collect()
    }

    // ---- local manifest lists

    /// The members of a local manifest list: (member, descriptor JSON, manifest bytes).
    pub(super) fn list_members(&self, list: &str) -> Result<Vec<(String, String, Vec<u8>)>> {
        let mut st = self.conn.prepare(
            "SELECT member, descriptor, raw FROM manifest_list_members WHERE list = ?1 ORDER BY member",
        )?;
        let rows = st.query_map(params![list], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Adds or replaces members of a list, all or none.
    pub(super) fn save_list_members(
        &mut self,
        list: &str,
        members: &[(String, String, Vec<u8>)],
    ) -> Result<()> {
        self.write(|tx| {
            for (member, descriptor, raw) in members {
                tx.execute(
                    "INSERT OR REPLACE INTO manifest_list_members (list, member, descriptor, raw) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![list, member, descriptor, raw],
                )?;
            }
            Ok(())
        })
    }

    /// Forgets a list; false when there was none.
    pub(super) fn delete_list(&mut self, list: &str) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM manifest_list_members WHERE list = ?1",
                params![list],
            )?;
            Ok(n > 0)
        })
    }

    // ---- mounts

    pub(super) fn mounts(&self) -> Result<Vec<MountRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {MOUNT_COLS} FROM mounts ORDER BY created, id"
        ))?;
        let rows = st.query_map([], raw_mount)?;
        rows.map(|r| mount_row(r?)).collect()
    }

    pub(super) fn mount(&self, id: &str) -> Result<Option<MountRow>> {
        self.conn
            .query_row(
                &format!("SELECT {MOUNT_COLS} FROM mounts WHERE id = ?1"),
                params![id],
                raw_mount,
            )
            .optional()?
            .map(mount_row)
            .transpose()
    }

    pub(super) fn insert_mount(&mut self, m: &MountRow) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO mounts ({MOUNT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    m.id.as_str(),
                    m.image_id.to_string(),
                    m.target,
                    m.driver,
                    m.readonly,
                    m.created,
                    m.prepared
                ],
            )?;
            Ok(())
        })
    }

    pub(super) fn delete_mount(&mut self, id: &MountId) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM mounts WHERE id = ?1", params![id.as_str()])?;
            Ok(())
        })
    }

    // ---- snapshots (containerd's; the rules are `snapshots`' and the engine's)

    pub(super) fn snapshot(&self, key: &str) -> Result<Option<SnapshotRow>> {
        self.conn
            .query_row(
                &format!("SELECT {SNAPSHOT_COLS} FROM {SNAPSHOT_FROM} WHERE s.key = ?1"),
                params![key],
                raw_snapshot,
            )
            .optional()?
            .map(snapshot_row)
            .transpose()
    }

    pub(super) fn snapshots(&self) -> Result<Vec<SnapshotRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {SNAPSHOT_COLS} FROM {SNAPSHOT_FROM} ORDER BY s.id"
        ))?;
        let rows = st.query_map([], raw_snapshot)?;
        rows.map(|r| snapshot_row(r?)).collect()
    }

    /// The committed snapshots under snapshot `id` and their layers: its parent, grandparent, and
    /// so on, nearest first (overlay's lowerdir order).
    pub(super) fn snapshot_lowers(&self, id: i64) -> Result<Vec<(i64, LayerKey)>> {
        let mut st = self.conn.prepare(
            "WITH RECURSIVE up(id, depth) AS (
                 SELECT parent, 1 FROM snapshots WHERE id = ?1 AND parent IS NOT NULL
                 UNION ALL
                 SELECT s.parent, up.depth + 1 FROM snapshots s JOIN up ON s.id = up.id
                 WHERE s.parent IS NOT NULL)
             SELECT s.id, s.layer_key FROM up JOIN snapshots s ON s.id = up.id ORDER BY up.depth",
        )?;
        let rows = st.query_map(params![id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        rows.map(|r| {
            let (id, key) = r?;
            let key = key.ok_or_else(|| DbError::Corrupt {
                column: "snapshots.layer_key",
                value: format!("NULL for the parent snapshot {id}"),
            })?;
            Ok((id, key_col(key)?))
        })
        .collect()
    }

    /// Records a new snapshot (a committed one names a recorded layer), unless its key is taken or
    /// its parent is not a committed snapshot. Returns its id.
    pub(super) fn insert_snapshot(
        &mut self,
        new: &NewSnapshot,
    ) -> Result<Result<i64, SnapshotRefusal>> {
        self.write(|tx| {
            if snapshot_kind(tx, "key", &new.key)?.is_some() {
                return Ok(Err(SnapshotRefusal::Exists));
            }
            if let Some(parent) = new.parent {
                if let Err(refusal) = committed_parent(tx, parent)? {
                    return Ok(Err(refusal));
                }
            }
            tx.execute(
                "INSERT INTO snapshots (key, kind, parent, layer_key, chain_id, labels, created, updated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                params![
                    new.key,
                    new.kind.as_str(),
                    new.parent,
                    new.layer.as_ref().map(LayerKey::as_str),
                    new.chain_id.as_ref().map(Digest::to_string),
                    labels_json(&new.labels),
                    new.time
                ],
            )?;
            Ok(Ok(tx.last_insert_rowid()))
        })
    }

    /// Turns active snapshot `c.id` into the committed snapshot `c.name` of layer `c.layer`
    /// (recorded here unless it is already), rebased onto `c.parent` when it had none.
    pub(super) fn commit_snapshot(
        &mut self,
        c: &SnapshotCommit,
    ) -> Result<Result<(), SnapshotRefusal>> {
        self.write(|tx| {
            if snapshot_kind(tx, "key", &c.name)?.is_some() {
                return Ok(Err(SnapshotRefusal::Exists));
            }
            match snapshot_kind(tx, "id", &c.id)? {
                None => return Ok(Err(SnapshotRefusal::NotFound)),
                Some(SnapshotKind::Active) => {}
                Some(_) => return Ok(Err(SnapshotRefusal::NotActive)),
            }
            if let Some(parent) = c.parent {
                if let Err(refusal) = committed_parent(tx, parent)? {
                    return Ok(Err(refusal));
                }
            }
            insert_layer(tx, c.layer)?;
            tx.execute(
                "UPDATE snapshots SET key = ?2, kind = 'committed', parent = COALESCE(?3, parent),
                     layer_key = ?4, chain_id = ?5, labels = ?6, created = ?7, updated = ?7
                 WHERE id = ?1",
                params![
                    c.id,
                    c.name,
                    c.parent,
                    c.layer.key.as_str(),
                    c.chain_id.to_string(),
                    labels_json(c.labels),
                    c.time
                ],
            )?;
            Ok(Ok(()))
        })
    }

    /// Records `layer` (unless it is already) as the layer active snapshot `id` is being committed
    /// to, in one transaction; false (and nothing recorded) when there is no such active snapshot.
    pub(super) fn attach_snapshot_layer(&mut self, id: i64, layer: &LayerRow) -> Result<bool> {
        self.write(|tx| {
            if snapshot_kind(tx, "id", &id)? != Some(SnapshotKind::Active) {
                return Ok(false);
            }
            insert_layer(tx, layer)?;
            tx.execute(
                "UPDATE snapshots SET layer_key = ?2 WHERE id = ?1",
                params![id, layer.key.as_str()],
            )?;
            Ok(true)
        })
    }

    /// Replaces a snapshot's labels; false when it is gone.
    pub(super) fn update_snapshot(
        &mut self,
        id: i64,
        labels: &std::collections::BTreeMap<String, String>,
        time: i64,
    ) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE snapshots SET labels = ?2, updated = ?3 WHERE id = ?1",
                params![id, labels_json(labels), time],
            )? == 1)
        })
    }

    /// Forgets a snapshot without children, and its layer when nothing else uses it (returned,
    /// for its dir to be removed).
    pub(super) fn delete_snapshot(
        &mut self,
        id: i64,
    ) -> Result<Result<Option<LayerKey>, SnapshotRefusal>> {
        self.write(|tx| {
            let layer: Option<Option<String>> = tx
                .query_row(
                    "SELECT layer_key FROM snapshots WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(layer) = layer else {
                return Ok(Err(SnapshotRefusal::NotFound));
            };
            let children: i64 = tx.query_row(
                "SELECT COUNT(*) FROM snapshots WHERE parent = ?1",
                params![id],
                |r| r.get(0),
            )?;
            if children > 0 {
                return Ok(Err(SnapshotRefusal::HasChildren));
            }
            tx.execute("DELETE FROM snapshots WHERE id = ?1", params![id])?;
            let Some(key) = layer.map(key_col).transpose()? else {
                return Ok(Ok(None));
            };
            if layer_user_count(tx, &key)? > 0 {
                return Ok(Ok(None));
            }
            // Step (1) of a two-step removal (see `store::gc`), as for a deleted image.
            add_removal(tx, "layer", key.as_str())?;
            Ok(Ok(Some(key)))
        })
    }
}

/// The kind of the snapshot whose `column` (`key` or `id`) is `value`.
fn snapshot_kind(
    tx: &Transaction,
    column: &str,
    value: &dyn rusqlite::ToSql,
) -> Result<Option<SnapshotKind>> {
    let kind: Option<String> = tx
        .query_row(
            &format!("SELECT kind FROM snapshots WHERE {column} = ?1"),
            params![value],
            |r| r.get(0),
        )
        .optional()?;
    kind.map(|k| kind_col(&k)).transpose()
}

/// Whether snapshot `id` can be a parent: it exists and is committed.
fn committed_parent(tx: &Transaction, id: i64) -> Result<Result<(), SnapshotRefusal>> {
    Ok(match snapshot_kind(tx, "id", &id)? {
        None => Err(SnapshotRefusal::ParentNotFound),
        Some(SnapshotKind::Committed) => Ok(()),
        Some(_) => Err(SnapshotRefusal::ParentNotCommitted),
    })
}

/// Images and snapshots that use a layer (one it must keep while any does).
fn layer_user_count(tx: &Transaction, key: &LayerKey) -> Result<i64> {
    Ok(tx.query_row(
        "SELECT (SELECT COUNT(*) FROM image_layers WHERE layer_key = ?1)
              + (SELECT COUNT(*) FROM snapshots WHERE layer_key = ?1)",
        params![key.as_str()],
        |r| r.get(0),
    )?)
}

fn add_removal(tx: &Transaction, kind: &str, name: &str) -> Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO removals (kind, name) VALUES (?1, ?2)",
        params![kind, name],
    )?;
    Ok(())
}

fn opening(path: &Path) -> String {
    format!("opening the metadata database {}", path.display())
}

/// Why the database at `path` cannot be opened or written, from the file and its filesystem: used
/// where SQLite gives no errno (a connection that could not be made).
fn diagnose(path: &Path) -> Option<FsCause> {
    let space = fsinfo::space(fsinfo::existing_ancestor(path)?).ok()?;
    if space.read_only {
        return Some(FsCause::ReadOnly);
    }
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path);
    if let Err(e) = opened {
        if let Some(cause) = e.raw_os_error().and_then(|n| FsCause::from_errno(n, path)) {
            return Some(cause);
        }
    }
    if space.free_inodes == 0 {
        Some(FsCause::NoInodes)
    } else if space.free_blocks == 0 {
        Some(FsCause::NoSpace)
    } else {
        None
    }
}

fn reserve_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-reserve");
    PathBuf::from(s)
}

/// Makes the reserve [`RESERVE_BYTES`] long (allocated, not sparse) when it is missing or short;
/// where there is not that much room it is left for a later command.
fn keep_reserve(path: &Path) {
    if std::fs::metadata(path).is_ok_and(|m| m.len() >= RESERVE_BYTES) {
        return;
    }
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(super::perms::FILE_MODE)
        .open(path)
        .and_then(|f| {
            rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, RESERVE_BYTES)
                .map_err(std::io::Error::from)
        });
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
}

/// Deletes the reserve (if a command has not already).
fn release_reserve(path: &Path) {
    let _ = std::fs::remove_file(path);
}

fn insert_layer(tx: &Transaction, l: &LayerRow) -> Result<()> {
    tx.execute(
        &format!("INSERT OR IGNORE INTO layers ({LAYER_COLS}, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            l.key.as_str(),
            l.diff_id.to_string(),
            l.chain_id.to_string(),
            l.parent_dependent,
            l.size as i64,
            l.entries as i64,
            now()
        ],
    )?;
    Ok(())
}

/// Points a tag at an image; returns the image it pointed at before, if another.
fn set_tag(tx: &Transaction, name: &str, id: &Digest) -> Result<Option<Digest>> {
    let old: Option<String> = tx
        .query_row(
            "SELECT image_id FROM tags WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )
        .optional()?;
    tx.execute(
        "INSERT INTO tags (name, image_id) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
        params![name, id.to_string()],
    )?;
    match old {
        Some(o) if o != id.to_string() => Ok(Some(digest_col("tags.image_id", o)?)),
        _ => Ok(None),
    }
}

type RawLayer = (String, String, String, bool, i64, i64);
fn raw_layer(r: &rusqlite::Row) -> rusqlite::Result<RawLayer> {
    RawLayer::try_from(r)
}
fn layer_row(r: RawLayer) -> Result<LayerRow> {
    Ok(LayerRow {
        key: key_col(r.0)?,
        diff_id: digest_col("layers.diff_id", r.1)?,
        chain_id: digest_col("layers.chain_id", r.2)?,
        parent_dependent: r.3,
        size: r.4 as u64,
        entries: r.5 as u64,
    })
}

type RawImage = (String, Option<String>, i64, i64);
fn raw_image(r: &rusqlite::Row) -> rusqlite::Result<RawImage> {
    RawImage::try_from(r)
}
fn image_row(r: RawImage) -> Result<ImageRow> {
    Ok(ImageRow {
        id: digest_col("images.id", r.0)?,
        created: r.1,
        loaded: r.2,
        size: r.3 as u64,
    })
}

type RawMount = (String, String, String, String, bool, i64, bool);
fn raw_mount(r: &rusqlite::Row) -> rusqlite::Result<RawMount> {
    RawMount::try_from(r)
}
fn mount_row(r: RawMount) -> Result<MountRow> {
    Ok(MountRow {
        id: mount_id_col(r.0)?,
        image_id: digest_col("mounts.image_id", r.1)?,
        target: r.2,
        driver: r.3,
        readonly: r.4,
        created: r.5,
        prepared: r.6,
    })
}

const SNAPSHOT_COLS: &str =
    "s.id, s.key, s.kind, s.parent, p.key, s.layer_key, s.chain_id, s.labels, s.created, s.updated";
const SNAPSHOT_FROM: &str = "snapshots s LEFT JOIN snapshots p ON p.id = s.parent";

type RawSnapshot = (
    i64,
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    i64,
    i64,
);
fn raw_snapshot(r: &rusqlite::Row) -> rusqlite::Result<RawSnapshot> {
    RawSnapshot::try_from(r)
}
fn snapshot_row(r: RawSnapshot) -> Result<SnapshotRow> {
    let labels = serde_json::from_str(&r.7).map_err(|_| DbError::Corrupt {
        column: "snapshots.labels",
        value: r.7.clone(),
    })?;
    Ok(SnapshotRow {
        id: r.0,
        key: r.1,
        kind: kind_col(&r.2)?,
        parent: r.3.zip(r.4),
        layer: r.5.map(key_col).transpose()?,
        chain_id: r
            .6
            .map(|c| digest_col("snapshots.chain_id", c))
            .transpose()?,
        labels,
        created: r.8,
        updated: r.9,
    })
}
fn kind_col(s: &str) -> Result<SnapshotKind> {
    SnapshotKind::parse(s).ok_or_else(|| DbError::Corrupt {
        column: "snapshots.kind",
        value: s.to_string(),
    })
}
fn labels_json(labels: &std::collections::BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
#[path = "db_tests.rs"]
mod tests;
