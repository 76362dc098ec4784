//! `lamina prune`, `save`, `df`, `fsck` (`history` is in `history`).

use super::args::{DfArgs, FsckArgs, PruneArgs, SaveArgs};
use super::image_list::split_tag;
use super::output::{human_size, parse_rfc3339, time_ago};
use super::{CliError, CliResult, Context};
use crate::engine::{Engine, FsckOptions, RemoveReport};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

pub fn prune(root: &Path, a: PruneArgs) -> CliResult {
    if !a.force {
        let warning = if a.all {
            "WARNING! This will remove all images without at least one mount associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        if !confirm(warning) {
            return Ok(());
        }
    }
    let mut engine = Engine::open(root).context(|| "prune".to_string())?;
    let report = engine.prune(a.all).context(|| "prune".to_string())?;
    print_removed(&report, true);
    println!("Total reclaimed space: {}", human_size(report.reclaimed()));
    Ok(())
}

/// Asks on stderr, reads a line on stdin; anything but y/yes is no (as docker's prompt).
fn confirm(warning: &str) -> bool {
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    if !std::io::stdin().is_terminal() {
        eprintln!();
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// docker's prune listing: `Deleted Images:` then `untagged:` / `deleted:` lines.
pub(crate) fn print_removed(report: &RemoveReport, prune_style: bool) {
    let any = !(report.untagged.is_empty() && report.deleted_images.is_empty());
    if prune_style && any {
        println!("Deleted Images:");
    }
    let (u, d) = if prune_style {
        ("untagged", "deleted")
    } else {
        ("Untagged", "Deleted")
    };
    for t in &report.untagged {
        println!("{u}: {t}");
    }
    for id in &report.deleted_images {
        println!("{d}: {id}");
    }
    for (diff_id, _, _) in &report.deleted_layers {
        println!("{d}: {diff_id}");
    }
    if prune_style && any {
        println!();
    }
}

pub fn save(root: &Path, a: SaveArgs) -> CliResult {
    let what = || format!("save {}", a.images.join(" "));
    if a.output.as_os_str() == "-" || (a.output.as_os_str().is_empty()) {
        return Err(CliError(format!(
            "{}: give the archive file with -o FILE",
            what()
        )));
    }
    let engine = Engine::open(root).context(what)?;
    let saved = engine.save(&a.images, &a.output, a.format).context(what)?;
    for s in saved {
        let names = if s.names.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.names.join(", "))
        };
        eprintln!("Saved {}{names}", s.id);
    }
    Ok(())
}

pub fn df(root: &Path, a: DfArgs) -> CliResult {
    let engine = Engine::open(root).context(|| "df".to_string())?;
    let u = engine.disk_usage().context(|| "df".to_string())?;
    let active_images = u.images.iter().filter(|i| i.mounts > 0).count();
    let active_layers = u.layers.iter().filter(|l| l.active).count();
    let mounted = u.mounts.iter().filter(|m| m.mounted).count();
    let mounts_size: u64 = u.mounts.iter().map(|m| m.size).sum();
    let stale_size: u64 = u.mounts.iter().filter(|m| !m.mounted).map(|m| m.size).sum();
    let pct = |part: u64, whole: u64| (part * 100).checked_div(whole).unwrap_or(0);
    let reclaim = u.reclaimable();
    let total = u.layers_size();
    if !a.verbose {
        let mut lines = vec![
            "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE".to_string(),
            format!(
                "Images\t{}\t{active_images}\t{}\t{} ({}%)",
                u.images.len(),
                human_size(total),
                human_size(reclaim),
                pct(reclaim, total)
            ),
            format!(
                "Layers\t{}\t{active_layers}\t{}\t{} ({}%)",
                u.layers.len(),
                human_size(total),
                human_size(reclaim),
                pct(reclaim, total)
            ),
            format!(
                "Mounts\t{}\t{mounted}\t{}\t{} ({}%)",
                u.mounts.len(),
                human_size(mounts_size),
                human_size(stale_size),
                pct(stale_size, mounts_size)
            ),
        ];
        let (kept, kept_size) = u.kept_blobs();
        if kept > 0 {
            // Only in stores that keep blobs (`--keep-blobs`): others see docker's rows alone.
            let inactive = u.layers.iter().filter(|l| !l.active);
            let (kept_active, kept_reclaim) = inactive.fold((kept, 0), |(n, bytes), l| {
                (n - l.kept_blobs, bytes + l.kept_size)
            });
            lines.push(format!(
                "Layer blobs\t{kept}\t{kept_active}\t{}\t{} ({}%)",
                human_size(kept_size),
                human_size(kept_reclaim),
                pct(kept_reclaim, kept_size)
            ));
        }
        print!("{}", super::format::align(&lines));
        return Ok(());
    }
    println!("Images space usage:\n");
    let mut lines = vec![
        "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tMOUNTS".to_string(),
    ];
    for i in &u.images {
        let created = i
            .created
            .as_deref()
            .and_then(parse_rfc3339)
            .map(time_ago)
            .unwrap_or_else(|| "N/A".into());
        let tags = engine.familiar_tags(&i.id)?;
        let names: Vec<(String, String)> = if tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            tags.iter().map(|t| split_tag(t)).collect()
        };
        for (repo, tag) in names {
            lines.push(format!(
                "{repo}\t{tag}\t{}\t{created}\t{}\t{}\t{}\t{}",
                i.id.short(),
                human_size(i.size),
                human_size(i.shared),
                human_size(i.unique),
                i.mounts
            ));
        }
    }
    print!("{}", super::format::align(&lines));
    println!("\nLayers space usage:\n");
    let kept = u.kept_blobs().0 > 0;
    let mut lines = vec![format!(
        "LAYER\tSIZE\tIMAGES\tACTIVE{}",
        if kept { "\tKEPT BLOBS" } else { "" }
    )];
    for l in &u.layers {
        let blobs = match kept {
            true => format!("\t{}", human_size(l.kept_size)),
            false => String::new(),
        };
        lines.push(format!(
            "{}\t{}\t{}\t{}{blobs}",
            l.diff_id.short(),
            human_size(l.size),
            l.images,
            if l.active { "yes" } else { "no" }
        ));
    }
    print!("{}", super::format::align(&lines));
    println!("\nMounts space usage:\n");
    let mut lines = vec!["MOUNT ID\tIMAGE\tDRIVER\tSIZE\tCREATED\tSTATUS\tTARGET".to_string()];
    for m in &u.mounts {
        lines.push(format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            m.id,
            m.image_id.short(),
            m.driver,
            human_size(m.size),
            time_ago(m.created),
            if m.mounted { "mounted" } else { "not mounted" },
            m.target
        ));
    }
    print!("{}", super::format::align(&lines));
    println!(
        "\nTotal: {} in {} layers for {} images (their layers counted once per image: {}); reclaimable {}",
        human_size(total),
        u.layers.len(),
        u.images.len(),
        human_size(u.images.iter().map(|i| i.size).sum()),
        human_size(reclaim)
    );
    Ok(())
}

pub fn fsck(root: &Path, a: FsckArgs) -> CliResult {
    let mut engine = Engine::open_for_fsck(root).context(|| "fsck".to_string())?;
    let report = engine
        .fsck(FsckOptions {
            repair: a.repair,
            verify: a.verify,
        })
        .context(|| "fsck".to_string())?;
    for p in &report.problems {
        let fixed = p
            .repaired
            .as_ref()
            .map(|r| format!(" [repaired: {r}]"))
            .unwrap_or_default();
        println!("{}: {}{fixed}", p.subject, p.detail);
    }
    let left = report.unrepaired();
    let verified = if a.verify {
        format!(", {} entries verified", report.files_verified)
    } else {
        String::new()
    };
    eprintln!(
        "fsck: {} layers checked{verified}; {} problems found, {} repaired",
        report.layers_checked,
        report.problems.len(),
        report.problems.len() - left
    );
    if left > 0 {
        let hint = if a.repair {
            ""
        } else {
            " (run `lamina fsck --repair`)"
        };
        return Err(CliError(format!("fsck: {left} problems left{hint}")));
    }
    Ok(())
}
