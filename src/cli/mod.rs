//! The command line: argument parsing, output, exit codes. Everything here is presentation; the work is
//! done by the library, through `engine` only.
//!
//! Exit codes: 0 ok, 1 error, 2 usage. What a person reads goes to stderr, what a script reads to stdout.

mod args;
mod filter;
mod format;
mod history;
mod image_list;
mod images;
mod inspect;
mod load;
mod login;
mod manage;
mod manifest;
mod manifest_list;
mod mount;
mod output;
mod pull;
mod push;
mod run;
mod search;
mod snapshotter;
mod template;
mod template_exec;
mod template_funcs;
mod template_lex;
mod template_printf;
mod template_value;

use args::{Cli, Command, ContainerCommand, ImageCommand};
use clap::Parser;
use std::io::{IsTerminal, Write};

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    // The snapshotter is a daemon: what it serves is logged unless LAMINA_LOG says otherwise.
    let daemon = matches!(cli.command, Command::Snapshotter(_));
    init_logging(cli.debug, if daemon { "info" } else { "warn" });
    let root = cli
        .root
        .clone()
        .unwrap_or_else(crate::engine::Engine::default_root);
    let result = match cli.command {
        Command::Load(a) => load::load(&root, a),
        Command::Import(a) => load::import(&root, a),
        Command::Mount(a) => mount::mount(&root, a),
        Command::Umount(a) => mount::umount(&root, a),
        Command::Mounts(a) => mount::mounts(&root, a),
        Command::Info => mount::info(&root),
        Command::Diff(a) => mount::diff(&root, a),
        Command::Commit(a) => mount::commit(&root, a),
        Command::Images(a) => image_list::images(&root, a),
        Command::Tag(a) => images::tag(&root, a),
        Command::Inspect(a) => return inspect::inspect(&root, a, "object"),
        Command::Rmi(a) => images::rmi(&root, a),
        Command::Pull(a) => pull::pull(&root, a),
        Command::Push(a) => push::push(&root, a),
        Command::Login(a) => login::login(a),
        Command::Logout(a) => login::logout(a),
        Command::Search(a) => search::search(a),
        Command::Manifest(c) => manifest_list::manifest(&root, c),
        Command::History(a) => history::history(&root, a),
        Command::Prune(a) => manage::prune(&root, a),
        Command::Save(a) => manage::save(&root, a),
        Command::Df(a) => manage::df(&root, a),
        Command::Fsck(a) => manage::fsck(&root, a),
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => {
            return run::run(&root, a)
        }
        Command::Container(c) => run::container(&root, c),
        Command::Image(c) => match c {
            ImageCommand::Ls(a) => image_list::images(&root, a),
            ImageCommand::Pull(a) => pull::pull(&root, a),
            ImageCommand::Push(a) => push::push(&root, a),
            ImageCommand::Rm(a) => images::rmi(&root, a),
            ImageCommand::Tag(a) => images::tag(&root, a),
            ImageCommand::Inspect(a) => return inspect::inspect(&root, a, "image"),
            ImageCommand::History(a) => history::history(&root, a),
            ImageCommand::Prune(a) => manage::prune(&root, a),
            ImageCommand::Save(a) => manage::save(&root, a),
            ImageCommand::Load(a) => load::load(&root, a),
            ImageCommand::Import(a) => load::import(&root, a),
        },
        Command::Snapshotter(a) => snapshotter::snapshotter(&root, a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = std::io::stdout().flush();
            // One line, whatever a registry put in its error body (see output::escape_controls).
            eprintln!("lamina: {}", output::escape_controls(&e.to_string()));
            1
        }
    }
}

fn init_logging(debug: bool, default_level: &str) {
    let filter = if debug {
        tracing_subscriber::EnvFilter::new("debug")
    } else {
        tracing_subscriber::EnvFilter::try_from_env("LAMINA_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level))
    };
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into a file or a pipe.
        .with_ansi(std::io::stderr().is_terminal());
    // --debug is for finding out where the time goes: seconds since the start on every line.
    let _ = if debug {
        log.with_timer(tracing_subscriber::fmt::time::uptime())
            .try_init()
    } else {
        log.without_time().try_init()
    };
}

/// An error at the CLI edge: a context (what was being done) and the cause, printed as one line.
#[derive(Debug)]
pub struct CliError(String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, CliError>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, CliError> {
        self.map_err(|e| CliError(format!("{}: {e}", what())))
    }
}

pub(crate) type CliResult = Result<(), CliError>;
