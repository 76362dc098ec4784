//! Who we are to a registry: `WWW-Authenticate` challenges, and credentials kept as docker keeps
//! them (`config.json` under `$DOCKER_CONFIG` or `~/.docker`: `auths.<host>.auth` is
//! base64("user:password"); `credsStore` / `credHelpers` name a `docker-credential-*` helper).
//!
//! Invariant: a stored config.json is written whole to a temporary file with mode 0600 and renamed
//! over the old one, so a reader never sees half of it and other users never see any of it. Keys
//! this module does not know are kept as they were.

use super::RegistryError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{Map, Value};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// docker.io's credentials live under this key, for historical reasons.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

impl Credentials {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", B64.encode(raw))
    }
}

/// One challenge of a `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercased: `basic` or `bearer`.
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a `WWW-Authenticate` value (RFC 7235): challenges separated by commas, each a scheme
/// followed by `name=value` parameters whose values are tokens or quoted strings. Anything it cannot
/// read ends the parse; what was read before is kept.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    loop {
        p.skip(|c| c == b' ' || c == b'\t' || c == b',');
        let Some(word) = p.token() else { break };
        p.skip(|c| c == b' ' || c == b'\t');
        if p.peek() == Some(b'=') {
            // a parameter of the current challenge
            p.i += 1;
            p.skip(|c| c == b' ' || c == b'\t');
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token()
            };
            let (Some(value), Some(current)) = (value, out.last_mut()) else {
                break;
            };
            current.params.push((word.to_ascii_lowercase(), value));
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: Vec::new(),
            });
        }
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }

    /// RFC 7230 token characters (and `/` for token68-ish values some servers send unquoted).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        self.skip(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c));
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn quoted(&mut self) -> Option<String> {
        self.i += 1; // opening quote
        let mut v = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(String::from_utf8_lossy(&v).into_owned());
                }
                b'\\' => {
                    self.i += 1;
                    v.push(self.peek()?);
                    self.i += 1;
                }
                c => {
                    v.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

/// The directory docker keeps config.json in: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    home.join(".docker")
}

/// The config.json key credentials for `host` are stored under (docker's convention).
pub fn auth_key(host: &str) -> String {
    if is_docker_hub(host) {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        host.to_string()
    }
}

fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// A config.json key as a bare host: `https://host:5000/v1/` -> `host:5000` (docker's
/// ConvertToHostname), with Docker Hub's aliases folded together.
fn key_host(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest);
    if is_docker_hub(host) {
        "docker.io".into()
    } else {
        host.to_string()
    }
}

/// Credentials for `host` from the config.json in `dir`: a credential helper when one is named for
/// the host (or `credsStore` for all), else `auths`. `Ok(None)` when there are none.
pub fn lookup(dir: &Path, host: &str) -> Result<Option<Credentials>, RegistryError> {
    let path = dir.join("config.json");
    let Some(config) = read_config(&path, "")? else {
        return Ok(None);
    };
    let want = key_host(host);
    if let Some(helper) = helper_for(&config, host) {
        if let Some(c) = from_helper(helper, host)? {
            return Ok(Some(c));
        }
    }
    let Some(auths) = config.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    let Some((_, entry)) = auths.iter().find(|(k, _)| key_host(k) == want) else {
        return Ok(None);
    };
    entry_credentials(entry).map_err(|reason| config_err(&path, format!("auths.{host}: {reason}")))
}

/// An `auths` entry: `auth` (base64 of `user:password`), or `username` + `password`.
fn entry_credentials(entry: &Value) -> Result<Option<Credentials>, String> {
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if let Some(auth) = field("auth") {
        let raw = B64
            .decode(auth.trim())
            .map_err(|e| format!("auth is not base64: {e}"))?;
        let raw = String::from_utf8(raw).map_err(|_| "auth is not UTF-8".to_string())?;
        let (user, pass) = raw
            .split_once(':')
            .ok_or_else(|| "auth does not decode to user:password".to_string())?;
        return Ok(Some(Credentials {
            username: user.to_string(),
            password: pass.trim_end_matches('\n').to_string(),
        }));
    }
    match (field("username"), field("password")) {
        (Some(u), Some(p)) => Ok(Some(Credentials {
            username: u.into(),
            password: p.into(),
        })),
        _ => Ok(None),
    }
}

/// Asks `docker-credential-NAME get` (the credential-helper protocol: the server URL on stdin,
/// `{"Username","Secret"}` on stdout).
fn from_helper(name: &str, host: &str) -> Result<Option<Credentials>, RegistryError> {
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{name}");
    let server = auth_key(host);
    let child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("credential helper {program}: {e}; using config.json auths");
            return Ok(None);
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| RegistryError::Credentials {
            what: program.clone(),
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        // "credentials not found in native keychain" is a normal answer.
        tracing::debug!("{program}: {}", String::from_utf8_lossy(&out.stderr).trim());
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| RegistryError::Credentials {
        what: program.clone(),
        reason: format!("malformed answer: {e}"),
    })?;
    let get = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Ok(Some(Credentials {
        username: get("Username"),
        password: get("Secret"),
    }))
}

/// Stores `creds` for `host` in `dir/config.json` as `docker login` does, keeping every other key.
/// Returns the file written.
pub fn store(dir: &Path, host: &str, creds: &Credentials) -> Result<PathBuf, RegistryError> {
    let path = dir.join("config.json");
    fs::create_dir_all(dir).map_err(|e| config_err(dir, e.to_string()))?;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    let mut config =
        read_config(&path, ", not overwriting it")?.unwrap_or_else(|| Value::Object(Map::new()));
    let Some(obj) = config.as_object_mut() else {
        return Err(config_err(
            &path,
            "not a JSON object, not overwriting it".into(),
        ));
    };
    let auths = obj
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    if let Some(auths) = auths.as_object_mut() {
        // one entry per registry: drop aliases written in another spelling
        let want = key_host(host);
        auths.retain(|k, _| key_host(k) != want);
        let raw = format!("{}:{}", creds.username, creds.password);
        let mut entry = Map::new();
        entry.insert("auth".into(), Value::String(B64.encode(raw)));
        auths.insert(auth_key(host), Value::Object(entry));
    }
    write_config(&path, &config)?;
    Ok(path)
}

/// Removes the credentials for `host` from `dir/config.json` as `docker logout` does: every
/// `auths` key that names the host (bare, `http://`, `https://`, with a path), everything else
/// kept, the file replaced whole. A credential helper named for the host is asked to erase its
/// copy too. Returns false when there were none to remove (docker's "Not logged in").
pub fn erase(dir: &Path, host: &str) -> Result<bool, RegistryError> {
    let path = dir.join("config.json");
    let Some(mut config) = read_config(&path, ", not changing it")? else {
        return Ok(false);
    };
    let want = key_host(host);
    let helper = helper_for(&config, host).map(str::to_string);
    let mut removed = false;
    if let Some(auths) = config.get_mut("auths").and_then(Value::as_object_mut) {
        let before = auths.len();
        auths.retain(|k, _| key_host(k) != want);
        removed = auths.len() != before;
    }
    if let Some(helper) = helper {
        removed |= helper_erase(&helper, host);
    }
    if removed {
        write_config(&path, &config)?;
    }
    Ok(removed)
}

/// The config.json at `path`; `None` when there is none (or it is empty). `not_touching` ends the
/// message for malformed JSON when the caller was about to change the file.
fn read_config(path: &Path, not_touching: &str) -> Result<Option<Value>, RegistryError> {
    match fs::read_to_string(path) {
        Ok(t) if t.trim().is_empty() => Ok(None),
        Ok(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| config_err(path, format!("malformed JSON{not_touching}: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(config_err(path, e.to_string())),
    }
}

/// The credential helper docker would ask for `host`: `credHelpers` for that host, else
/// `credsStore` for every host.
fn helper_for<'c>(config: &'c Value, host: &str) -> Option<&'c str> {
    let want = key_host(host);
    config
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|m| m.iter().find(|(k, _)| key_host(k) == want))
        .and_then(|(_, v)| v.as_str())
        .or_else(|| config.get("credsStore").and_then(Value::as_str))
        .filter(|h| !h.is_empty())
}

/// Replaces config.json whole, private to its owner, indented as docker writes it.
fn write_config(path: &Path, config: &Value) -> Result<(), RegistryError> {
    let mut bytes =
        serde_json::to_vec_pretty(config).map_err(|e| config_err(path, e.to_string()))?;
    bytes.push(b'\n');
    write_private(path, &bytes).map_err(|e| config_err(path, e.to_string()))
}

/// `docker-credential-NAME erase` with the server URL on stdin; true when it erased something.
fn helper_erase(name: &str, host: &str) -> bool {
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{name}");
    let child = Command::new(&program)
        .arg("erase")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        tracing::warn!("credential helper {program} cannot be run");
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(auth_key(host).as_bytes());
    }
    match child.wait_with_output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            tracing::debug!(
                "{program} erase: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            false
        }
        Err(e) => {
            tracing::warn!("credential helper {program}: {e}");
            false
        }
    }
}

/// Writes `bytes` to a 0600 temporary file beside `path` (created exclusively under a random
/// name: a symlink planted under a predictable one would be written through), then renames it over
/// `path`.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use crate::sys::create::{create_temp, set_mode};
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name");
    let name = path.file_name().ok_or_else(invalid)?;
    let dir = fs::File::open(path.parent().ok_or_else(invalid)?)?;
    let mode = rustix::fs::Mode::from_raw_mode(0o600);
    let (mut f, tmp) = create_temp(&dir, &name.to_string_lossy(), mode)?;
    let result = (|| {
        set_mode(&f, mode)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        rustix::fs::renameat(&dir, &tmp, &dir, name)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(&dir, &tmp, rustix::fs::AtFlags::empty());
    }
    result
}

fn config_err(path: &Path, reason: String) -> RegistryError {
    RegistryError::Credentials {
        what: path.display().to_string(),
        reason,
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
