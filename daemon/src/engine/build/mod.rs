//! `docker build` with the classic (non-BuildKit) builder, as moby's
//! `builder/dockerfile` does it: the context tar is unpacked into a
//! private directory, the Dockerfile parsed ([`dockerfile`]), and each
//! instruction applied in order. Config instructions (`ENV`, `CMD`, ...)
//! change the image config; `RUN` runs a real container from the current
//! state through the engine's container machinery and its writable layer
//! becomes a layer; `COPY`/`ADD`/`WORKDIR` change a mounted snapshot of
//! the current state ([`rootfs`]) and its changes become a layer.
//!
//! Layers and intermediate states are stored under one lease
//! ([`berth_core::archive::BuildSession`]); only the final image is
//! recorded, so no intermediate images appear in `docker images` (the
//! IDs printed after each step name the config of that state and are not
//! kept). Layer steps are cached ([`cache`]).

mod cache;
mod config;
mod context;
mod copy;
pub(crate) mod dockerfile;
mod rootfs;
mod steps;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_core::archive::{BuildSession, BuiltLayer};
use berth_core::{Digest, Reference};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::containers::ContainerError;
use super::images::ImageError;
use super::{Engine, ErrorKind};
use crate::log;
use dockerfile::{Instruction, ParseError, Vars};

/// Why a build failed; texts are moby's where clients show them.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("Cannot locate specified Dockerfile: {0}")]
    NoDockerfile(String),
    #[error("forbidden path outside the build context: {0} ()")]
    OutsideContext(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Pull(String),
    #[error("build cache: {0}")]
    Cache(#[source] berth_core::MetadataError),
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i64 },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Archive(#[from] berth_core::ArchiveError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("internal error: build {0} task failed")]
    Task(&'static str),
}

impl BuildError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Self::Parse(_) | Self::NoDockerfile(_) | Self::OutsideContext(_) | Self::Invalid(_) => {
                ErrorKind::InvalidArgument
            }
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Pull(_) => ErrorKind::Unavailable,
            Self::RunFailed { .. } | Self::Io { .. } | Self::Task(_) | Self::Cache(_) => {
                ErrorKind::Internal
            }
            Self::Image(e) => e.kind(),
            Self::Container(e) => e.kind(),
            Self::Archive(e) => e.kind().into(),
        }
    }

    /// The exit status a client should end with (moby's JSON error code).
    pub(crate) fn code(&self) -> Option<i64> {
        match self {
            Self::RunFailed { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// What `POST /build` asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct BuildRequest {
    pub(crate) tags: Vec<String>,
    pub(crate) dockerfile: String,
    pub(crate) build_args: BTreeMap<String, Option<String>>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) quiet: bool,
    /// `nocache`: run every step (their layers are still cached).
    pub(crate) no_cache: bool,
    /// `pull`: pull FROM images even when present.
    pub(crate) pull: bool,
    /// `target`: the stage to stop after.
    pub(crate) target: String,
    /// Registry address -> credentials, for FROM's pulls.
    pub(crate) credentials: BTreeMap<String, berth_core::Credentials>,
}

/// One message of the build's progress stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BuildMessage {
    Stream(String),
    /// The built image's ID (`{"aux":{"ID":...}}`).
    Aux(String),
    Error {
        message: String,
        code: Option<i64>,
    },
}

/// A build whose context is unpacked and Dockerfile parsed.
pub(crate) struct Build {
    request: BuildRequest,
    tags: Vec<Reference>,
    instructions: Vec<Instruction>,
    work: WorkDir,
}

/// The build's private directory under `<data-root>/build/`, removed
/// when the build ends.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            log::warning!("build: removing {}: {e}", self.0.display());
        }
    }
}

/// Sends progress; a client gone makes later sends fail silently and the
/// build stops at its next step.
#[derive(Clone)]
pub(crate) struct Progress {
    tx: mpsc::Sender<BuildMessage>,
    quiet: bool,
}

impl Progress {
    pub(crate) async fn say(&self, text: impl Into<String>) {
        if !self.quiet {
            let _ = self.tx.send(BuildMessage::Stream(text.into())).await;
        }
    }

    pub(crate) fn say_blocking(&self, text: impl Into<String>) {
        if !self.quiet {
            let _ = self.tx.blocking_send(BuildMessage::Stream(text.into()));
        }
    }

    fn gone(&self) -> bool {
        self.tx.is_closed()
    }
}

/// The state of one stage: the image config being built and its layers.
#[derive(Debug, Clone)]
pub(crate) struct Stage {
    pub(crate) name: Option<String>,
    /// The whole image config (`architecture`, `os`, `config`, `history`).
    pub(crate) config: Value,
    pub(crate) layers: Vec<BuiltLayer>,
    /// Declared `ARG`s and their values.
    pub(crate) args: Vars,
    /// The base image's ID while nothing changed it.
    pub(crate) base_id: Option<Digest>,
    /// `CMD` was set in this stage (`ENTRYPOINT` then keeps it).
    pub(crate) cmd_set: bool,
    /// What the stage is made of so far (base and steps), stable across
    /// builds: the build cache's key for the next step.
    pub(crate) cache_key: Digest,
}

impl Stage {
    /// The runtime config (`Env`, `Cmd`, ...).
    pub(crate) fn run(&mut self) -> &mut Map<String, Value> {
        let object = self
            .config
            .as_object_mut()
            .expect("a stage config is an object");
        let entry = object
            .entry("config")
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        entry.as_object_mut().expect("just made an object")
    }

    pub(crate) fn env(&self) -> Vec<String> {
        self.config["config"]["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn string(&self, key: &str) -> String {
        self.config["config"][key]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Variables for expansion: args, then env over them.
    pub(crate) fn vars(&self) -> Vars {
        let mut vars = self.args.clone();
        for e in self.env() {
            let (k, v) = e.split_once('=').unwrap_or((&e, ""));
            vars.insert(k.to_owned(), v.to_owned());
        }
        vars
    }

    pub(crate) fn shell(&self) -> Vec<String> {
        match self.config["config"]["Shell"].as_array() {
            Some(list) if !list.is_empty() => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => vec!["/bin/sh".to_owned(), "-c".to_owned()],
        }
    }

    /// Appends a history entry; `empty` for steps without a layer.
    pub(crate) fn history(&mut self, created_by: String, empty: bool) {
        let now = now_rfc3339();
        let object = self
            .config
            .as_object_mut()
            .expect("a stage config is an object");
        object.insert("created".into(), json!(now));
        let mut entry = json!({"created": now, "created_by": created_by});
        if empty {
            entry["empty_layer"] = json!(true);
        }
        match object.get_mut("history").and_then(Value::as_array_mut) {
            Some(list) => list.push(entry),
            None => {
                object.insert("history".into(), json!([entry]));
            }
        }
    }

    /// moby's comment for config-only steps: `/bin/sh -c #(nop)  ENV A=1`.
    pub(crate) fn nop(&self, text: &str) -> String {
        let mut shell = self.shell().join(" ");
        shell.push_str(" #(nop)  ");
        shell.push_str(text);
        shell
    }

    /// The config as stored, `rootfs` included: its digest is the ID this
    /// state would have.
    pub(crate) fn id(&self) -> Digest {
        if let Some(id) = self.base_id {
            return id;
        }
        let mut config = self.config.clone();
        let diff_ids: Vec<String> = self.layers.iter().map(|l| l.diff_id.to_string()).collect();
        config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
        Digest::of(&serde_json::to_vec(&config).unwrap_or_default())
    }
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

pub(crate) fn short(id: &Digest) -> String {
    id.hex()[..12].to_owned()
}

/// The instructions up to the end of stage `target` (`--target`).
fn until_target(
    instructions: Vec<Instruction>,
    target: &str,
) -> Result<Vec<Instruction>, BuildError> {
    let named = |ins: &Instruction| {
        let words: Vec<&str> = ins.args.split_whitespace().collect();
        ins.keyword == "FROM"
            && words.len() == 3
            && words[1].eq_ignore_ascii_case("as")
            && words[2].eq_ignore_ascii_case(target)
    };
    let Some(start) = instructions.iter().position(named) else {
        return Err(BuildError::Invalid(format!(
            "failed to reach build target {target} in Dockerfile"
        )));
    };
    let end = instructions[start + 1..]
        .iter()
        .position(|i| i.keyword == "FROM")
        .map_or(instructions.len(), |n| start + 1 + n);
    Ok(instructions.into_iter().take(end).collect())
}

/// Parses a `t` value as moby's build does (a name without tag is `:latest`).
fn parse_tag(tag: &str) -> Result<Reference, BuildError> {
    let reference = Reference::parse(tag)
        .map_err(|e| BuildError::Invalid(format!("invalid reference format: {tag}: {e}")))?;
    if reference.digest().is_some() {
        return Err(BuildError::Invalid(format!(
            "invalid tag {tag:?}: a digest cannot be a build tag"
        )));
    }
    Ok(reference)
}

impl Engine {
    /// Unpacks the context (`body`) and parses the Dockerfile: what can
    /// fail before any output is an error of the request itself.
    pub(crate) async fn build_prepare(
        &self,
        request: BuildRequest,
        body: mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    ) -> Result<Build, BuildError> {
        let tags = request
            .tags
            .iter()
            .map(|t| parse_tag(t))
            .collect::<Result<Vec<_>, _>>()?;
        let id = super::containers::random_id()?;
        let work = WorkDir(self.config.data_root.join("build").join(&id[..16]));
        let context_dir = work.0.join("context");
        std::fs::create_dir_all(&context_dir).map_err(|source| BuildError::Io {
            what: "creating",
            path: context_dir.display().to_string(),
            source,
        })?;
        let dockerfile_name = match request.dockerfile.as_str() {
            "" => "Dockerfile".to_owned(),
            name => name.to_owned(),
        };
        let target = request.target.to_ascii_lowercase();
        let instructions = tokio::task::spawn_blocking(move || {
            context::unpack(super::images::pipe::ChannelReader::new(body), &context_dir)?;
            let relative = dockerfile_name.trim_start_matches("./").to_owned();
            if context::escapes(&relative) {
                return Err(BuildError::OutsideContext(dockerfile_name));
            }
            let root = rustix::fs::open(
                &context_dir,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| BuildError::Io {
                what: "opening",
                path: context_dir.display().to_string(),
                source: e.into(),
            })?;
            let file = context::open_in_root(&root, &relative, rustix::fs::OFlags::RDONLY)
                .map_err(|_| BuildError::NoDockerfile(dockerfile_name.clone()))?;
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(file), &mut text).map_err(
                |source| BuildError::Io {
                    what: "reading",
                    path: dockerfile_name.clone(),
                    source,
                },
            )?;
            let ignore = std::fs::read_to_string(context_dir.join(".dockerignore"))
                .map(|t| context::Ignore::parse(&t))
                .unwrap_or_default();
            ignore
                .apply(&context_dir, &[relative.as_str(), ".dockerignore"])
                .map_err(|source| BuildError::Io {
                    what: "applying .dockerignore in",
                    path: "the build context".into(),
                    source,
                })?;
            let mut instructions = dockerfile::parse(&text)?;
            if !target.is_empty() {
                instructions = until_target(instructions, &target)?;
            }
            match instructions.iter().find(|i| i.keyword != "ARG") {
                Some(first) if first.keyword != "FROM" => {
                    Err(first.error("no build stage in current context").into())
                }
                None => Err(BuildError::Invalid(
                    "the Dockerfile (Dockerfile) cannot be empty".into(),
                )),
                _ => Ok(instructions),
            }
        })
        .await
        .map_err(|_| BuildError::Task("context"))??;
        Ok(Build {
            request,
            tags,
            instructions,
            work,
        })
    }

    /// Runs the build, sending its progress; ends with the image ID or the
    /// error in the stream, as moby's legacy builder does.
    pub(crate) async fn build_run(self: Arc<Self>, build: Build, tx: mpsc::Sender<BuildMessage>) {
        let progress = Progress {
            tx: tx.clone(),
            quiet: build.request.quiet,
        };
        let stores = self.images.stores().clone();
        let begun = {
            let stores = stores.clone();
            tokio::task::spawn_blocking(move || BuildSession::begin(&stores.metadata)).await
        };
        let session = match begun {
            Ok(Ok(session)) => Arc::new(Mutex::new(session)),
            Ok(Err(e)) => return fail(&tx, &e.into()).await,
            Err(_) => return fail(&tx, &BuildError::Task("start")).await,
        };
        let mut runner = steps::Runner {
            engine: self.clone(),
            stores: stores.clone(),
            progress: progress.clone(),
            work: build.work.0.clone(),
            context: build.work.0.join("context"),
            request: &build.request,
            stages: Vec::new(),
            global_args: Vars::new(),
            used_args: Vec::new(),
            session: session.clone(),
        };
        let result = runner.run_all(&build.instructions).await;
        let unused: Vec<String> = build
            .request
            .build_args
            .keys()
            .filter(|k| !runner.used_args.contains(k))
            .cloned()
            .collect();
        let last = runner.stages.last().cloned();
        drop(runner);
        let outcome = match (result, last) {
            (Ok(()), Some(stage)) => {
                self.build_finish(&session, stage, &build.tags, &build.request.labels)
                    .await
            }
            (Ok(()), None) => Err(BuildError::Invalid("no build stage".into())),
            (Err(e), _) => Err(e),
        };
        let ok = outcome.is_ok();
        let end = {
            let stores = stores.clone();
            let session = session.clone();
            tokio::task::spawn_blocking(move || {
                let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
                if ok {
                    if let Err(e) = session.finish(&stores.metadata) {
                        log::warning!("build: dropping the lease: {e}");
                    }
                } else {
                    session.rollback(&stores.content, &stores.metadata);
                    stores.remove_unused_layers();
                }
            })
        };
        let _ = end.await;
        match outcome {
            Ok(id) => {
                if !unused.is_empty() {
                    progress
                        .say(format!(
                            "[Warning] One or more build-args [{}] were not consumed\n",
                            unused.join(" ")
                        ))
                        .await;
                }
                let _ = tx.send(BuildMessage::Aux(id.clone())).await;
                if build.request.quiet {
                    let _ = tx.send(BuildMessage::Stream(format!("{id}\n"))).await;
                } else {
                    let hex = id.trim_start_matches("sha256:");
                    progress
                        .say(format!(
                            "Successfully built {}\n",
                            &hex[..12.min(hex.len())]
                        ))
                        .await;
                    for tag in &build.tags {
                        progress
                            .say(format!("Successfully tagged {}\n", tag.familiar()))
                            .await;
                    }
                }
            }
            Err(e) => fail(&tx, &e).await,
        }
        drop(build);
    }

    /// `POST /build/prune`: forgets the build cache; returns the keys.
    pub(crate) async fn build_cache_prune(&self) -> Result<Vec<String>, BuildError> {
        let stores = self.images.stores().clone();
        tokio::task::spawn_blocking(move || cache::prune(&stores.metadata))
            .await
            .map_err(|_| BuildError::Task("prune"))?
    }

    /// Stores and tags the last stage's image; returns its ID.
    async fn build_finish(
        &self,
        session: &Arc<Mutex<BuildSession>>,
        mut stage: Stage,
        tags: &[Reference],
        labels: &BTreeMap<String, String>,
    ) -> Result<String, BuildError> {
        if !labels.is_empty() {
            let run = stage.run();
            let entry = run
                .entry("Labels")
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            for (k, v) in labels {
                entry[k] = json!(v);
            }
        }
        let session = session.clone();
        let (id, _) = self
            .store_new_image("build", tags.first().cloned(), move |stores, reference| {
                let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
                let image = session.image(
                    &stores.content,
                    &stores.metadata,
                    &stage.config,
                    &stage.layers,
                )?;
                let references: Vec<Reference> = reference.cloned().into_iter().collect();
                session.record(&stores.metadata, &image, &references)?;
                Ok(image)
            })
            .await?;
        for tag in tags.iter().skip(1) {
            self.image_tag(&id, &tag.familiar(), "").await?;
        }
        Ok(id)
    }
}

/// At daemon start: what builds cut short by a crash left (their mounts
/// and work directories under `<data-root>/build`, their `build-*`
/// snapshots). No build runs yet, so all of it is stale.
pub(crate) fn clean_stale(data_root: &std::path::Path, stores: &super::images::Stores) {
    use berth_snapshotter::Snapshotter;
    let dir = data_root.join("build");
    if let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") {
        let prefix = format!("{}/", dir.display());
        let mut stale: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        // Deepest first.
        stale.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in stale {
            let _ = rustix::mount::unmount(mount, rustix::mount::UnmountFlags::DETACH);
        }
    }
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        log::warning!("removing stale build directories in {}: {e}", dir.display());
    }
    if let Ok(snapshots) = stores.snapshots.list() {
        for info in snapshots.iter().filter(|i| i.name.starts_with("build-")) {
            if let Err(e) = stores.snapshots.remove(&info.name) {
                log::warning!("removing stale build snapshot {}: {e}", info.name);
            }
        }
    }
}

async fn fail(tx: &mpsc::Sender<BuildMessage>, err: &BuildError) {
    let _ = tx
        .send(BuildMessage::Error {
            message: err.to_string(),
            code: err.code(),
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_keeps_the_stages_up_to_the_named_one() {
        let parsed =
            dockerfile::parse("FROM a AS one\nRUN x\nFROM b AS Two\nRUN y\nFROM c\nRUN z\n")
                .unwrap();
        let kept = until_target(parsed.clone(), "two").unwrap();
        assert_eq!(kept.len(), 4);
        assert_eq!(kept.last().unwrap().args, "y");
        assert_eq!(until_target(parsed.clone(), "one").unwrap().len(), 2);
        assert!(until_target(parsed, "three").is_err());
    }
}
