//! `lamina login REGISTRY [-u USER] [--password-stdin]`: checks the credentials against the
//! registry, then stores them in docker's config.json (mode 0600) so docker, podman, skopeo and
//! lamina share one login. `lamina logout [REGISTRY]` removes them again.

use super::args::{LoginArgs, LogoutArgs};
use super::{CliError, CliResult, Context};
use crate::engine::{self, Credentials};
use std::io::{BufRead, IsTerminal, Read, Write};

pub fn login(a: LoginArgs) -> CliResult {
    let registry_name = engine::login_registry(a.registry.as_deref().unwrap_or("docker.io"));
    let what = || format!("login {registry_name}");
    if a.password_stdin && a.password.is_some() {
        return Err(CliError(format!(
            "{}: --password and --password-stdin are exclusive",
            what()
        )));
    }
    if a.password_stdin && a.username.is_none() {
        return Err(CliError(format!(
            "{}: --password-stdin needs --username",
            what()
        )));
    }
    let username = match &a.username {
        Some(u) => u.clone(),
        None => prompt("Username: ", true).context(what)?,
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context(what)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = &a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else {
        prompt("Password: ", false).context(what)?
    };
    if username.is_empty() || password.is_empty() {
        return Err(CliError(format!(
            "{}: username and password must not be empty",
            what()
        )));
    }
    let creds = Credentials { username, password };
    let opts = super::pull::registry_options(&a.registry_args);
    let path = engine::login(&registry_name, creds, &opts).context(what)?;
    eprintln!(
        "WARNING! Your password will be stored unencrypted in {}.",
        path.display()
    );
    println!("Login Succeeded");
    Ok(())
}

/// `lamina logout [REGISTRY]`: removes the stored credentials, with docker's words (on stdout,
/// exit 0 whether or not there were any).
pub fn logout(a: LogoutArgs) -> CliResult {
    let registry_name = engine::login_registry(a.registry.as_deref().unwrap_or("docker.io"));
    let shown = engine::logout_name(&registry_name);
    let opts = engine::RegistryOptions::default();
    if engine::logout(&registry_name, &opts).context(|| format!("logout {registry_name}"))? {
        println!("Removing login credentials for {shown}");
    } else {
        println!("Not logged in to {shown}");
    }
    Ok(())
}

/// Reads a line from the terminal, without echo for a password.
fn prompt(label: &str, echo: bool) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError(
            "cannot perform an interactive login from a non-TTY device: use -u USER --password-stdin"
                .into(),
        ));
    }
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let _guard = if echo { None } else { EchoOff::new(&stdin) };
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    if !echo {
        eprintln!();
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Turns terminal echo off until dropped.
struct EchoOff {
    saved: rustix::termios::Termios,
}

impl EchoOff {
    fn new(stdin: &std::io::Stdin) -> Option<EchoOff> {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
        let saved = tcgetattr(stdin).ok()?;
        let mut t = saved.clone();
        t.local_modes.remove(LocalModes::ECHO);
        tcsetattr(stdin, OptionalActions::Now, &t).ok()?;
        Some(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        use rustix::termios::{tcsetattr, OptionalActions};
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}
