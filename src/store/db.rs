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

use super::layout::{LayerKey, MountId};
use crate::digest::Digest;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::Path;
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
    #[error("metadata database holds a malformed value {value:?} in {column}")]
    Corrupt { column: &'static str, value: String },
    #[error("image {0} gained a mount while being deleted")]
    GainedMount(Digest),
}

pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// How long a command waits for another one's write transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

fn set_up(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
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
";

pub(super) struct Db {
    conn: Connection,
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
        let open_err = |source| DbError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // Switching a new database to WAL takes an exclusive lock, and SQLite returns SQLITE_BUSY for
        // it without calling the busy handler: two processes creating one store at the same instant
        // must wait for each other here themselves.
        let started = std::time::Instant::now();
        loop {
            match set_up(&conn) {
                Ok(()) => return Ok(Db { conn }),
                Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => return Err(open_err(e)),
            }
        }
    }

    /// Runs `f` in one IMMEDIATE transaction (taking the write lock up front, so two writers queue
    /// instead of failing with SQLITE_BUSY halfway).
    fn write<T>(&mut self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
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

    /// How many images use a layer.
    pub(super) fn layer_users(&self, key: &LayerKey) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT COUNT(DISTINCT image_id) FROM image_layers WHERE layer_key = ?1",
            params![key.as_str()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Forgets a layer no image uses.
    pub(super) fn delete_unused_layer(&mut self, key: &LayerKey) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM layers WHERE key = ?1
                 AND NOT EXISTS (SELECT 1 FROM image_layers WHERE layer_key = ?1)",
                params![key.as_str()],
            )?;
            Ok(())
        })
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

    /// Deletes an image's rows (it must have no mount) and the rows of the layers only it used,
    /// which are returned.
    pub(super) fn delete_image(&mut self, id: &Digest) -> Result<Vec<LayerRow>> {
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
                let users: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM image_layers WHERE layer_key = ?1",
                    params![l.key.as_str()],
                    |r| r.get(0),
                )?;
                if users == 0 && !gone.iter().any(|g| g.key == l.key) {
                    tx.execute("DELETE FROM layers WHERE key = ?1", params![l.key.as_str()])?;
                    gone.push(l.clone());
                }
            }
            Ok(gone)
        })
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
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
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
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
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
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
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

#[cfg(test)]
#[path = "db_tests.rs"]
mod tests;
