//! Dockerfile-style config changes for `import --change` and `commit --change`
//! (`CMD ["sh"]`, `ENV A=b`, `WORKDIR /x`, ...), applied to an image config as JSON.

use serde_json::{json, Map, Value};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangeError {
    #[error("unknown instruction {0:?} (supported: CMD ENTRYPOINT ENV LABEL WORKDIR USER EXPOSE VOLUME STOPSIGNAL)")]
    Unknown(String),
    #[error("{instruction} needs a value")]
    Empty { instruction: String },
    #[error("{instruction}: {reason}")]
    Invalid { instruction: String, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    WorkingDir(String),
    User(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
}

impl ConfigChange {
    pub fn parse(s: &str) -> Result<ConfigChange, ChangeError> {
        let s = s.trim();
        let (word, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
        let rest = rest.trim();
        let instruction = word.to_ascii_uppercase();
        if rest.is_empty() {
            return Err(ChangeError::Empty { instruction });
        }
        let invalid = |reason: &str| ChangeError::Invalid {
            instruction: instruction.clone(),
            reason: reason.to_string(),
        };
        Ok(match instruction.as_str() {
            "CMD" => ConfigChange::Cmd(exec_or_shell(rest)),
            "ENTRYPOINT" => ConfigChange::Entrypoint(exec_or_shell(rest)),
            "ENV" => ConfigChange::Env(
                pairs(rest).ok_or_else(|| invalid("expected KEY=VALUE or KEY VALUE"))?,
            ),
            "LABEL" => {
                ConfigChange::Label(pairs(rest).ok_or_else(|| invalid("expected KEY=VALUE"))?)
            }
            "WORKDIR" => ConfigChange::WorkingDir(rest.to_string()),
            "USER" => ConfigChange::User(rest.to_string()),
            "EXPOSE" => ConfigChange::Expose(
                rest.split_whitespace()
                    .map(|p| {
                        if p.contains('/') {
                            p.to_string()
                        } else {
                            format!("{p}/tcp")
                        }
                    })
                    .collect(),
            ),
            "VOLUME" => ConfigChange::Volume(
                serde_json::from_str::<Vec<String>>(rest)
                    .unwrap_or_else(|_| rest.split_whitespace().map(str::to_string).collect()),
            ),
            "STOPSIGNAL" => ConfigChange::StopSignal(rest.to_string()),
            _ => return Err(ChangeError::Unknown(word.to_string())),
        })
    }

    /// Applies the change to the `config` object of an image config.
    pub fn apply(&self, config: &mut Map<String, Value>) {
        let list = |v: &[String]| Value::from(v.to_vec());
        match self {
            ConfigChange::Cmd(v) => {
                config.insert("Cmd".into(), list(v));
            }
            ConfigChange::Entrypoint(v) => {
                config.insert("Entrypoint".into(), list(v));
                // As docker: setting ENTRYPOINT resets an inherited CMD.
                config.remove("Cmd");
            }
            ConfigChange::Env(pairs) => {
                let mut env: Vec<String> = config
                    .get("Env")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                for (k, v) in pairs {
                    let entry = format!("{k}={v}");
                    match env
                        .iter_mut()
                        .find(|e| e.split('=').next() == Some(k.as_str()))
                    {
                        Some(e) => *e = entry,
                        None => env.push(entry),
                    }
                }
                config.insert("Env".into(), Value::from(env));
            }
            ConfigChange::Label(pairs) => {
                let labels = object(config, "Labels");
                for (k, v) in pairs {
                    labels.insert(k.clone(), Value::from(v.clone()));
                }
            }
            ConfigChange::WorkingDir(d) => {
                config.insert("WorkingDir".into(), Value::from(d.clone()));
            }
            ConfigChange::User(u) => {
                config.insert("User".into(), Value::from(u.clone()));
            }
            ConfigChange::Expose(ports) => {
                let map = object(config, "ExposedPorts");
                for p in ports {
                    map.insert(p.clone(), json!({}));
                }
            }
            ConfigChange::Volume(vols) => {
                let map = object(config, "Volumes");
                for v in vols {
                    map.insert(v.clone(), json!({}));
                }
            }
            ConfigChange::StopSignal(s) => {
                config.insert("StopSignal".into(), Value::from(s.clone()));
            }
        }
    }
}

fn object<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = config.entry(key.to_string()).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("slot was just made an object"),
    }
}

/// The exec form (a JSON array) as it is; the shell form wrapped in `/bin/sh -c`, as docker does.
fn exec_or_shell(rest: &str) -> Vec<String> {
    match serde_json::from_str::<Vec<String>>(rest) {
        Ok(v) => v,
        Err(_) => vec!["/bin/sh".into(), "-c".into(), rest.to_string()],
    }
}

/// `A=1 B="two words"` or the legacy `A value with spaces`.
fn pairs(rest: &str) -> Option<Vec<(String, String)>> {
    let first = rest.split_whitespace().next()?;
    if !first.contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace)?;
        return Some(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return None;
        }
        let mut value = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            match (quote, c) {
                (None, '"') | (None, '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => break,
                (_, '\\') => {
                    chars.next();
                    if let Some(n) = chars.peek() {
                        value.push(*n);
                    }
                }
                (_, c) => value.push(c),
            }
            chars.next();
        }
        out.push((key, value));
    }
}

#[cfg(test)]
#[path = "change_tests.rs"]
mod tests;
