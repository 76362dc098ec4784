//! `lamina tag`, `rmi` (`images` is in `image_list`, `inspect` in `inspect`).

use super::args::{RmiArgs, TagArgs};
use super::{CliError, CliResult, Context};
use crate::engine::Engine;
use std::path::Path;

pub fn tag(root: &Path, a: TagArgs) -> CliResult {
    let what = || format!("tag {} {}", a.source, a.target);
    let mut engine = Engine::open(root).context(what)?;
    engine.tag(&a.source, &a.target).context(what)?;
    Ok(())
}

pub fn rmi(root: &Path, a: RmiArgs) -> CliResult {
    let mut engine = Engine::open(root).context(|| "rmi".to_string())?;
    let mut failed = None;
    for name in &a.images {
        match engine.remove_image(name, a.force) {
            Ok(report) => {
                for t in &report.untagged {
                    println!("Untagged: {t}");
                }
                for id in &report.deleted_images {
                    println!("Deleted: {id}");
                }
                for (diff_id, _, _) in &report.deleted_layers {
                    println!("Deleted: {diff_id}");
                }
            }
            Err(e) => {
                eprintln!(
                    "lamina: rmi {}",
                    super::output::escape_controls(&format!("{name}: {e}"))
                );
                failed = Some(name.clone());
            }
        }
    }
    match failed {
        Some(_) => Err(CliError("rmi: some images could not be removed".into())),
        None => Ok(()),
    }
}
