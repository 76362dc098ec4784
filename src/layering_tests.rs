//! The architecture, checked: modules depend one way (bottom to top as listed in README.md's layout
//! section and ../shared/DESIGN.md), only the engine drives source, unpack and store together, and
//! only the store's db module speaks SQL. These read the source text, so a change that breaks the
//! layering fails here before a reviewer has to find it.

use std::fs;
use std::path::{Path, PathBuf};

/// Bottom to top: a module may use only the modules before it.
const LAYERS: &[&str] = &[
    "digest",
    "image",
    "sys",
    "tar",
    "layerfs",
    "source",
    "unpack",
    "mount",
    "copier",
    "runtime",
    "store",
    "engine",
    "snapshotter",
    "cli",
];

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file of a top-level module (`src/NAME.rs` or `src/NAME/**`), test files included.
fn files_of(module: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let file = src().join(format!("{module}.rs"));
    if file.is_file() {
        out.push(file);
    }
    let mut dirs = vec![src().join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The crate modules a file names as `crate::NAME`.
fn uses(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    let mut found: Vec<String> = text
        .match_indices("crate::")
        .map(|(i, _)| {
            let rest = &text[i + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            rest[..end].to_string()
        })
        .filter(|m| LAYERS.contains(&m.as_str()))
        .collect();
    found.sort();
    found.dedup();
    found
}

#[test]
fn every_module_is_listed() {
    for e in fs::read_dir(src()).unwrap().flatten() {
        let p = e.path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        let module = p.is_dir() || !(name.ends_with("_tests") || name == "lib" || name == "main");
        assert!(
            !module || LAYERS.contains(&name.as_str()),
            "src/{name} is not placed in LAYERS"
        );
    }
}

#[test]
fn modules_depend_only_on_those_below() {
    let mut wrong = Vec::new();
    for (i, module) in LAYERS.iter().enumerate() {
        for file in files_of(module) {
            for used in uses(&file) {
                let j = LAYERS.iter().position(|m| *m == used).unwrap();
                if j > i {
                    wrong.push(format!("{} uses crate::{used}", file.display()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "upward imports:\n{}", wrong.join("\n"));
}

#[test]
fn only_the_engine_drives_source_unpack_and_store_together() {
    for module in LAYERS.iter().filter(|m| **m != "engine") {
        let mut drives: Vec<String> = files_of(module)
            .iter()
            .flat_map(|f| uses(f))
            .filter(|m| ["source", "unpack", "store"].contains(&m.as_str()))
            .collect();
        drives.sort();
        drives.dedup();
        assert!(drives.len() < 2, "{module} uses {drives:?}");
    }
}

#[test]
fn sql_lives_in_the_store_db_module_only() {
    // The db module and its own tests (which build old schemas by hand).
    let db = [src().join("store/db.rs"), src().join("store/db_tests.rs")];
    for module in LAYERS {
        for file in files_of(module).into_iter().filter(|f| !db.contains(f)) {
            let text = fs::read_to_string(&file).unwrap();
            for word in [
                "SELECT ",
                "INSERT INTO",
                "DELETE FROM",
                "UPDATE ",
                "CREATE TABLE",
            ] {
                assert!(
                    !text.contains(word),
                    "{} contains SQL ({word})",
                    file.display()
                );
            }
        }
    }
}
