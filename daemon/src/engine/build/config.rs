//! The instructions that change only the image config (`ENV`, `CMD`,
//! `LABEL`, ...), and the dispatch of every instruction within a stage.

use serde_json::{Map, Value, json};

use berth_core::{Digest, Digester};

use super::copy::resolve_sources;
use super::dockerfile::{self, Instruction, Vars};
use super::steps::{Runner, copy_parts, run_plan};
use super::{BuildError, cache};
use crate::log;

/// The content digest of a `COPY`/`ADD`'s sources in the context.
fn hash_sources(
    context: &std::path::Path,
    keyword: &str,
    sources: &[String],
) -> Result<Digest, BuildError> {
    let root = rustix::fs::open(
        context,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| BuildError::Io {
        what: "opening",
        path: "the build context".into(),
        source: e.into(),
    })?;
    let (resolved, _) = resolve_sources(&root, keyword, sources)?;
    let mut digester = Digester::new();
    for source in &resolved {
        let fd = super::context::open_in_root(&root, source, rustix::fs::OFlags::RDONLY)
            .map_err(|e| super::copy::not_found(keyword, source, e))?;
        cache::hash_node(&mut digester, &fd, source).map_err(|source_err| BuildError::Io {
            what: "reading",
            path: source.clone(),
            source: source_err,
        })?;
    }
    Ok(digester.finish())
}

/// Go's `%q` of a string slice, as moby's history comments print them.
fn quoted(list: &[String]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", items.join(" "))
}

/// Go duration text (`30s`, `1m30s`) in nanoseconds.
fn duration_ns(text: &str) -> Option<i64> {
    humantime::parse_duration(text)
        .ok()
        .map(|d| d.as_nanos() as i64)
}

impl Runner<'_> {
    /// Applies one instruction of a stage: layer steps through the cache,
    /// config steps directly (their result joins the cache key).
    pub(super) async fn step(&mut self, ins: &Instruction) -> Result<(), BuildError> {
        if matches!(ins.keyword.as_str(), "RUN" | "COPY" | "ADD" | "WORKDIR") {
            return self.cached_step(ins).await;
        }
        self.stage().base_id = None;
        self.config_step(ins)?;
        let stage = self.stage();
        let identity = format!(
            "{}\n{}",
            stage.config["history"]
                .as_array()
                .and_then(|h| h.last())
                .map(|h| h["created_by"].to_string())
                .unwrap_or_default(),
            stage.config["config"]
        );
        stage.cache_key = cache::chain(&stage.cache_key, &identity);
        Ok(())
    }

    /// A layer step: reused from the cache when its key is there (and
    /// `nocache` is not set), else run and recorded.
    async fn cached_step(&mut self, ins: &Instruction) -> Result<(), BuildError> {
        let vars = self.stage().vars();
        let identity = self.identity(ins, &vars).await?;
        let key = cache::chain(&self.stage().cache_key, &identity);
        if !self.request.no_cache && self.reuse(&key).await? {
            self.progress.say(" ---> Using cache\n").await;
            self.stage().cache_key = key;
            return Ok(());
        }
        let layers_before = self.stage().layers.len();
        match ins.keyword.as_str() {
            "WORKDIR" => self.workdir(ins, &vars).await?,
            "RUN" => self.run(ins).await?,
            _ => self.copy(ins, &vars).await?,
        }
        let stage = self.stage();
        stage.cache_key = key;
        let entry = cache::Entry {
            layer: stage.layers.get(layers_before).cloned(),
            history: stage.config["history"]
                .as_array()
                .and_then(|h| h.last())
                .cloned()
                .unwrap_or_default(),
            config: stage.config["config"].clone(),
        };
        let stores = self.stores.clone();
        let stored =
            tokio::task::spawn_blocking(move || cache::store(&stores.metadata, &key, &entry)).await;
        if let Ok(Err(e)) = stored {
            log::warning!("build: {e}");
        }
        Ok(())
    }

    /// What makes a layer step what it is, besides the stage it runs on.
    async fn identity(&mut self, ins: &Instruction, vars: &Vars) -> Result<String, BuildError> {
        match ins.keyword.as_str() {
            "RUN" => Ok(format!("RUN\n{}", run_plan(self.stage(), ins).2)),
            "WORKDIR" => Ok(format!(
                "WORKDIR\n{}\n{}",
                dockerfile::word(&ins.args, vars).map_err(|e| ins.error(e))?,
                self.stage().string("WorkingDir")
            )),
            _ => {
                let (sources, dest) = copy_parts(ins, vars)?;
                if let Some(url) = sources
                    .iter()
                    .find(|s| s.starts_with("http://") || s.starts_with("https://"))
                {
                    return Err(BuildError::Invalid(format!(
                        "{} {url}: not supported: berthd builds have no network to fetch URLs",
                        ins.keyword
                    )));
                }
                let mut text = format!("{}\n{:?}\n{dest}\n{:?}\n", ins.keyword, sources, ins.flags);
                match ins.flag("from") {
                    // Another stage's files are what its key says.
                    Some(from) => {
                        let lower = from.to_ascii_lowercase();
                        let stages = &self.stages[..self.stages.len() - 1];
                        let stage = stages.iter().enumerate().find(|(i, s)| {
                            s.name.as_deref() == Some(lower.as_str()) || i.to_string() == from
                        });
                        match stage {
                            Some((_, stage)) => text.push_str(&stage.cache_key.to_string()),
                            None => {
                                let image = self.engine.image_inspect(from).await.map_err(|e| {
                                    BuildError::NotFound(format!(
                                        "invalid from flag value {from}: {e}"
                                    ))
                                })?;
                                text.push_str(&image.id());
                            }
                        }
                    }
                    None => {
                        let context = self.context.clone();
                        let keyword = ins.keyword.clone();
                        let digest = tokio::task::spawn_blocking(move || {
                            hash_sources(&context, &keyword, &sources)
                        })
                        .await
                        .map_err(|_| BuildError::Task("cache"))??;
                        text.push_str(&digest.to_string());
                    }
                }
                Ok(text)
            }
        }
    }

    /// Takes the cached result of the step keyed `key` into the stage;
    /// `false` on a miss (or a layer blob collected since).
    async fn reuse(&mut self, key: &Digest) -> Result<bool, BuildError> {
        let stores = self.stores.clone();
        let session = self.session.clone();
        let key = *key;
        let entry =
            tokio::task::spawn_blocking(move || -> Result<Option<cache::Entry>, BuildError> {
                let Some(entry) = cache::lookup(&stores.metadata, &key)? else {
                    return Ok(None);
                };
                if let Some(layer) = &entry.layer {
                    let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
                    if !session.reuse_layer(&stores.content, &stores.metadata, layer)? {
                        return Ok(None);
                    }
                }
                Ok(Some(entry))
            })
            .await
            .map_err(|_| BuildError::Task("cache"))??;
        let Some(entry) = entry else {
            return Ok(false);
        };
        let stage = self.stage();
        if let Some(layer) = entry.layer {
            stage.layers.push(layer);
        }
        stage.base_id = None;
        if let Some(object) = stage.config.as_object_mut() {
            object.insert("config".into(), entry.config);
            object.insert("created".into(), json!(super::now_rfc3339()));
            match object.get_mut("history").and_then(Value::as_array_mut) {
                Some(history) => history.push(entry.history),
                None => {
                    object.insert("history".into(), json!([entry.history]));
                }
            }
        }
        Ok(true)
    }

    fn config_step(&mut self, ins: &Instruction) -> Result<(), BuildError> {
        let vars = self.stage().vars();
        let err = |e: String| BuildError::from(ins.error(e));
        match ins.keyword.as_str() {
            "ENV" => {
                let pairs = dockerfile::pairs(ins, &vars, true)?;
                let mut env = self.stage().env();
                let mut text = Vec::new();
                for (key, value) in pairs {
                    env.retain(|e| e.split('=').next() != Some(key.as_str()));
                    env.push(format!("{key}={value}"));
                    text.push(format!("{key}={value}"));
                }
                let stage = self.stage();
                stage.run().insert("Env".into(), json!(env));
                let comment = stage.nop(&format!("ENV {}", text.join(" ")));
                stage.history(comment, true);
            }
            "LABEL" => {
                let pairs = dockerfile::pairs(ins, &vars, false)?;
                let stage = self.stage();
                let labels = stage
                    .run()
                    .entry("Labels")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !labels.is_object() {
                    *labels = Value::Object(Map::new());
                }
                let mut text = Vec::new();
                for (key, value) in pairs {
                    text.push(format!("{key}={value}"));
                    labels[key] = json!(value);
                }
                let comment = stage.nop(&format!("LABEL {}", text.join(" ")));
                stage.history(comment, true);
            }
            "MAINTAINER" => {
                let stage = self.stage();
                stage.config["author"] = json!(ins.args);
                let comment = stage.nop(&format!("MAINTAINER {}", ins.args));
                stage.history(comment, true);
            }
            "ARG" => {
                let global = self.global_args.clone();
                let mut text = Vec::new();
                for (key, value) in self.arg_values(ins, &vars)? {
                    let value = value.or_else(|| global.get(&key).cloned());
                    text.push(match &value {
                        Some(v) => format!("{key}={v}"),
                        None => key.clone(),
                    });
                    self.stage().args.insert(key, value.unwrap_or_default());
                }
                let stage = self.stage();
                let comment = stage.nop(&format!("ARG {}", text.join(" ")));
                stage.history(comment, true);
            }
            "CMD" | "ENTRYPOINT" => {
                let command = match ins.json_args() {
                    Some(list) => list,
                    None if ins.args.is_empty() => Vec::new(),
                    None => {
                        let mut shell = self.stage().shell();
                        shell.push(ins.args.clone());
                        shell
                    }
                };
                let stage = self.stage();
                let key = if ins.keyword == "CMD" {
                    "Cmd"
                } else {
                    "Entrypoint"
                };
                stage.run().insert(key.into(), json!(command));
                if ins.keyword == "CMD" {
                    stage.cmd_set = !command.is_empty();
                } else if !stage.cmd_set {
                    stage.run().insert("Cmd".into(), Value::Null);
                }
                let comment = stage.nop(&format!("{} {}", ins.keyword, quoted(&command)));
                stage.history(comment, true);
            }
            "SHELL" => {
                let shell = ins
                    .json_args()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| err("SHELL requires the arguments to be in JSON form".into()))?;
                let stage = self.stage();
                stage.run().insert("Shell".into(), json!(shell));
                let comment = stage.nop(&format!("SHELL {}", quoted(&shell)));
                stage.history(comment, true);
            }
            "USER" | "STOPSIGNAL" => {
                let value = dockerfile::word(&ins.args, &vars).map_err(err)?;
                if ins.keyword == "STOPSIGNAL" && !valid_signal(&value) {
                    return Err(err(format!("Invalid signal: {value}")));
                }
                let stage = self.stage();
                let key = if ins.keyword == "USER" {
                    "User"
                } else {
                    "StopSignal"
                };
                stage.run().insert(key.into(), json!(value));
                let comment = stage.nop(&format!("{} {value}", ins.keyword));
                stage.history(comment, true);
            }
            "EXPOSE" => {
                let ports = dockerfile::words(&ins.args, &vars).map_err(err)?;
                let stage = self.stage();
                let set = stage
                    .run()
                    .entry("ExposedPorts")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !set.is_object() {
                    *set = Value::Object(Map::new());
                }
                for port in &ports {
                    let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
                    if number.parse::<u16>().is_err() {
                        return Err(err(format!("invalid containerPort: {number}")));
                    }
                    set[format!("{number}/{}", proto.to_ascii_lowercase())] = json!({});
                }
                let comment = stage.nop(&format!("EXPOSE {}", ports.join(" ")));
                stage.history(comment, true);
            }
            "VOLUME" => {
                let paths = match ins.json_args() {
                    Some(list) => list,
                    None => dockerfile::words(&ins.args, &vars).map_err(err)?,
                };
                if paths.iter().any(String::is_empty) {
                    return Err(err("VOLUME specified can not be an empty string".into()));
                }
                let stage = self.stage();
                let set = stage
                    .run()
                    .entry("Volumes")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !set.is_object() {
                    *set = Value::Object(Map::new());
                }
                for path in &paths {
                    set[path.as_str()] = json!({});
                }
                let comment = stage.nop(&format!("VOLUME [{}]", paths.join(" ")));
                stage.history(comment, true);
            }
            "HEALTHCHECK" => {
                let health = healthcheck(ins)?;
                let stage = self.stage();
                let text = format!("HEALTHCHECK {health}");
                stage.run().insert("Healthcheck".into(), health);
                let comment = stage.nop(&text);
                stage.history(comment, true);
            }
            "ONBUILD" => {
                let stage = self.stage();
                let list = stage
                    .run()
                    .entry("OnBuild")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if !list.is_array() {
                    *list = Value::Array(Vec::new());
                }
                if let Some(list) = list.as_array_mut() {
                    list.push(json!(ins.args));
                }
                let comment = stage.nop(&format!("ONBUILD {}", ins.args));
                stage.history(comment, true);
            }
            other => return Err(err(format!("unknown instruction: {other}"))),
        }
        Ok(())
    }
}

/// moby's `signal.ParseSignal`: a number or a name, `SIG` optional.
fn valid_signal(text: &str) -> bool {
    const NAMES: &[&str] = &[
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    let name = text.trim_start_matches("SIG");
    text.parse::<u32>().is_ok_and(|n| (1..=64).contains(&n)) || NAMES.contains(&name)
}

/// `HEALTHCHECK [--interval=..] CMD ...` or `HEALTHCHECK NONE`, as the
/// config's `Healthcheck`.
fn healthcheck(ins: &Instruction) -> Result<Value, BuildError> {
    ins.check_flags(&[
        "interval",
        "timeout",
        "start-period",
        "start-interval",
        "retries",
    ])?;
    let err = |e: String| BuildError::from(ins.error(e));
    let (word, rest) = ins
        .args
        .split_once(char::is_whitespace)
        .unwrap_or((&ins.args, ""));
    let mut health = Map::new();
    match word.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !rest.trim().is_empty() || !ins.flags.is_empty() {
                return Err(err("HEALTHCHECK NONE takes no arguments".into()));
            }
            health.insert("Test".into(), json!(["NONE"]));
            return Ok(Value::Object(health));
        }
        "CMD" => {
            let rest = rest.trim();
            let test = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(list) if rest.starts_with('[') => std::iter::once("CMD".to_owned())
                    .chain(list)
                    .collect::<Vec<_>>(),
                _ => vec!["CMD-SHELL".to_owned(), rest.to_owned()],
            };
            if rest.is_empty() {
                return Err(err("Missing command after HEALTHCHECK CMD".into()));
            }
            health.insert("Test".into(), json!(test));
        }
        other => {
            return Err(err(format!(
                "Unknown type \"{other}\" in HEALTHCHECK (try CMD)"
            )));
        }
    }
    for (flag, key) in [
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
        ("start-interval", "StartInterval"),
    ] {
        if let Some(value) = ins.flag(flag) {
            let ns = duration_ns(value)
                .ok_or_else(|| err(format!("invalid duration for --{flag}: {value}")))?;
            health.insert(key.into(), json!(ns));
        }
    }
    if let Some(value) = ins.flag("retries") {
        let retries: i64 = value
            .parse()
            .map_err(|_| err(format!("invalid value for --retries: {value}")))?;
        health.insert("Retries".into(), json!(retries));
    }
    Ok(Value::Object(health))
}
