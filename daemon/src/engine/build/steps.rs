//! The instructions, one method each, applied to the current stage.

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_core::archive::{BuildSession, BuiltLayer};
use berth_core::image::{
    MEDIA_TYPE_DOCKER_LAYER, MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_OCI_LAYER,
    MEDIA_TYPE_OCI_LAYER_GZIP,
};
use berth_core::{Digest, Image, Target};
use rustix::fs::OFlags;
use serde_json::{Value, json};

use super::copy::Copier;
use super::dockerfile::{self, Instruction, Vars};
use super::rootfs::{Rootfs, make_dirs};
use super::{BuildError, BuildRequest, Progress, Stage, short};
use crate::api::containers_types::{ContainerConfig, CreateRequest};
use crate::engine::Engine;
use crate::engine::containers::run::WaitCondition;
use crate::engine::images::{ImageConfig, ImageDetails, Stores};
use crate::log;

/// Runs a build's instructions; see the module doc of `build`.
pub(crate) struct Runner<'a> {
    pub(crate) engine: Arc<Engine>,
    pub(crate) stores: Arc<Stores>,
    pub(crate) progress: Progress,
    pub(crate) work: PathBuf,
    pub(crate) context: PathBuf,
    pub(crate) request: &'a BuildRequest,
    pub(crate) stages: Vec<Stage>,
    /// `ARG`s before the first `FROM`.
    pub(crate) global_args: Vars,
    /// Build args some `ARG` declared.
    pub(crate) used_args: Vec<String>,
    pub(crate) session: Arc<Mutex<BuildSession>>,
}

pub(crate) fn io_err<'a>(
    what: &'static str,
    path: &'a str,
) -> impl FnOnce(std::io::Error) -> BuildError + 'a {
    move |source| BuildError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// A RUN's command, the declared ARGs it gets as env (sorted), and
/// moby's history text (`|1 A=b /bin/sh -c cmd` when there are ARGs).
pub(crate) fn run_plan(stage: &Stage, ins: &Instruction) -> (Vec<String>, Vec<String>, String) {
    let command = match ins.json_args() {
        Some(list) if !list.is_empty() => list,
        _ => {
            let mut shell = stage.shell();
            shell.push(ins.args.clone());
            shell
        }
    };
    let env = stage.env();
    let mut arg_env: Vec<String> = stage
        .args
        .iter()
        .filter(|(k, _)| !env.iter().any(|e| e.split('=').next() == Some(k.as_str())))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    arg_env.sort();
    let created_by = if arg_env.is_empty() {
        command.join(" ")
    } else {
        format!(
            "|{} {} {}",
            arg_env.len(),
            arg_env.join(" "),
            command.join(" ")
        )
    };
    (command, arg_env, created_by)
}

/// A `COPY`/`ADD`'s sources and destination, expanded.
pub(crate) fn copy_parts(
    ins: &Instruction,
    vars: &Vars,
) -> Result<(Vec<String>, String), BuildError> {
    let err = |e: String| BuildError::from(ins.error(e));
    let mut parts = match ins.json_args() {
        Some(list) => list
            .iter()
            .map(|p| dockerfile::word(p, vars))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?,
        None => dockerfile::words(&ins.args, vars).map_err(err)?,
    };
    if parts.len() < 2 {
        return Err(err(format!(
            "{} requires at least two arguments",
            ins.keyword
        )));
    }
    let dest = parts.pop().unwrap_or_default();
    Ok((parts, dest))
}

/// The credentials `X-Registry-Config` holds for `domain` (Docker Hub's
/// under its index address, others under `host[:port]`, maybe with a
/// scheme).
fn credentials_for(
    configs: &std::collections::BTreeMap<String, berth_core::Credentials>,
    domain: &str,
) -> Option<berth_core::Credentials> {
    let wanted = if domain == "docker.io" {
        "index.docker.io"
    } else {
        domain
    };
    configs
        .iter()
        .find(|(address, _)| {
            let host = address
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            host.split('/').next() == Some(wanted)
        })
        .map(|(_, credentials)| credentials.clone())
}

/// Docker's layer media types are byte-for-byte OCI ones.
fn oci_layer_type(media_type: &str) -> String {
    match media_type {
        MEDIA_TYPE_DOCKER_LAYER_GZIP => MEDIA_TYPE_OCI_LAYER_GZIP.to_owned(),
        MEDIA_TYPE_DOCKER_LAYER => MEDIA_TYPE_OCI_LAYER.to_owned(),
        other => other.to_owned(),
    }
}

/// `/a/./b/../c` (never above `/`).
pub(crate) fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

pub(crate) fn base_name(path: &str) -> String {
    clean(path)
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn parent_of(path: &str) -> String {
    let cleaned = clean(path);
    match cleaned.rsplit_once('/') {
        Some(("", _)) | None => "/".to_owned(),
        Some((parent, _)) => parent.to_owned(),
    }
}

impl Runner<'_> {
    pub(crate) async fn run_all(&mut self, instructions: &[Instruction]) -> Result<(), BuildError> {
        let total = instructions.len();
        for (n, ins) in instructions.iter().enumerate() {
            if self.progress.gone() {
                return Err(BuildError::Invalid(
                    "build cancelled: the client went away".into(),
                ));
            }
            self.progress
                .say(format!("Step {}/{total} : {}\n", n + 1, ins.original))
                .await;
            if ins.keyword == "FROM" {
                self.from(ins).await?;
                continue;
            }
            if self.stages.is_empty() {
                if ins.keyword == "ARG" {
                    let vars = self.global_args.clone();
                    for (key, value) in self.arg_values(ins, &vars)? {
                        self.global_args.insert(key, value.unwrap_or_default());
                    }
                    continue;
                }
                return Err(ins.error("no build stage in current context").into());
            }
            self.step(ins).await?;
            let id = self.stage().id();
            self.progress.say(format!(" ---> {}\n", short(&id))).await;
        }
        Ok(())
    }

    pub(super) fn stage(&mut self) -> &mut Stage {
        self.stages.last_mut().expect("a stage was started")
    }

    /// `ARG a=1 b`: names with their value (a build arg wins over the
    /// default).
    pub(super) fn arg_values(
        &mut self,
        ins: &Instruction,
        vars: &Vars,
    ) -> Result<Vec<(String, Option<String>)>, BuildError> {
        let mut out = Vec::new();
        for word in dockerfile::words(&ins.args, vars).map_err(|e| ins.error(e))? {
            let (key, default) = match word.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (word.clone(), None),
            };
            if key.is_empty() {
                return Err(ins.error("ARG names can not be blank").into());
            }
            let value = match self.request.build_args.get(&key) {
                Some(Some(given)) => {
                    if !self.used_args.contains(&key) {
                        self.used_args.push(key.clone());
                    }
                    Some(given.clone())
                }
                _ => default,
            };
            out.push((key, value));
        }
        Ok(out)
    }

    async fn from(&mut self, ins: &Instruction) -> Result<(), BuildError> {
        ins.check_flags(&["platform"])?;
        let words = dockerfile::words(&ins.args, &self.global_args).map_err(|e| ins.error(e))?;
        let (image_name, stage_name) = match words.as_slice() {
            [image] => (image.clone(), None),
            [image, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
                (image.clone(), Some(name.to_ascii_lowercase()))
            }
            _ => {
                return Err(ins
                    .error("FROM requires either one or three arguments")
                    .into());
            }
        };
        let mut stage = if image_name == "scratch" {
            Stage {
                name: None,
                config: json!({"architecture": "amd64", "os": "linux", "config": {}, "history": []}),
                layers: Vec::new(),
                args: Vars::new(),
                base_id: None,
                cmd_set: false,
                cache_key: Digest::of(b"scratch"),
            }
        } else if let Some(previous) = self
            .stages
            .iter()
            .find(|s| s.name.as_deref() == Some(image_name.to_ascii_lowercase().as_str()))
        {
            Stage {
                args: Vars::new(),
                cmd_set: false,
                ..previous.clone()
            }
        } else {
            self.base_stage(&image_name).await?
        };
        stage.name = stage_name;
        if !stage.env().iter().any(|e| e.starts_with("PATH=")) {
            let mut env = stage.env();
            env.push(
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            );
            stage.run().insert("Env".into(), json!(env));
            stage.base_id = None;
        }
        let triggers: Vec<String> = stage.config["config"]["OnBuild"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if !triggers.is_empty() {
            // Run once, here: the new image does not inherit them.
            stage.run().insert("OnBuild".into(), Value::Null);
            stage.base_id = None;
        }
        let id = stage.id();
        self.stages.push(stage);
        self.progress.say(format!(" ---> {}\n", short(&id))).await;
        if !triggers.is_empty() {
            self.progress
                .say(format!(
                    "# Executing {} build trigger{}\n",
                    triggers.len(),
                    if triggers.len() == 1 { "" } else { "s" }
                ))
                .await;
        }
        for trigger in &triggers {
            let mut parsed = dockerfile::parse(trigger)
                .map_err(|e| ins.error(format!("ONBUILD trigger {trigger:?}: {}", e.message)))?;
            let Some(mut instruction) = parsed.pop().filter(|_| parsed.is_empty()) else {
                return Err(ins
                    .error(format!(
                        "ONBUILD trigger {trigger:?} is not one instruction"
                    ))
                    .into());
            };
            if matches!(
                instruction.keyword.as_str(),
                "FROM" | "ONBUILD" | "MAINTAINER"
            ) {
                return Err(ins
                    .error(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        instruction.keyword
                    ))
                    .into());
            }
            instruction.line = ins.line;
            Box::pin(self.step(&instruction)).await?;
        }
        Ok(())
    }

    /// Pulls `name` for FROM (without credentials), its progress in the
    /// build's output as plain lines.
    async fn pull_base(&self, name: &str) -> Result<(), BuildError> {
        use crate::engine::images::PullLine;
        let reference = berth_core::Reference::parse(name)
            .map_err(|e| BuildError::Invalid(format!("invalid reference format: {name}: {e}")))?;
        let credentials = credentials_for(&self.request.credentials, reference.domain());
        let mut lines = self.engine.image_pull(reference, None, credentials).await?;
        while let Some(line) = lines.recv().await {
            match line {
                PullLine::Status { id, status } => {
                    let prefix = id.map(|i| format!("{i}: ")).unwrap_or_default();
                    self.progress.say(format!("{prefix}{status}\n")).await;
                }
                PullLine::Layer {
                    id,
                    status,
                    progress: None,
                } => self.progress.say(format!("{id}: {status}\n")).await,
                PullLine::Layer { .. } | PullLine::PushResult { .. } => {}
                PullLine::Error(message) => return Err(BuildError::Pull(message)),
            }
        }
        Ok(())
    }

    /// A stage on an image of the store, pulled first when missing (or
    /// always with `pull`).
    async fn base_stage(&self, name: &str) -> Result<Stage, BuildError> {
        if self.request.pull {
            self.pull_base(name).await?;
        }
        let details = match self.engine.image_inspect(name).await {
            Ok(details) => details,
            Err(e) if e.kind() == crate::engine::ErrorKind::NotFound && !self.request.pull => {
                self.pull_base(name).await?;
                self.engine.image_inspect(name).await?
            }
            Err(e) => return Err(e.into()),
        };
        let stores = self.stores.clone();
        let digest = details.image.config.digest;
        let mut config: Value = tokio::task::spawn_blocking(move || {
            let mut bytes = Vec::new();
            stores
                .content
                .reader(&digest)
                .map_err(|e| BuildError::Io {
                    what: "reading config",
                    path: digest.to_string(),
                    source: std::io::Error::other(e),
                })?
                .take(8 << 20)
                .read_to_end(&mut bytes)
                .map_err(io_err("reading config", "image"))?;
            serde_json::from_slice(&bytes)
                .map_err(|e| BuildError::Invalid(format!("image config {digest}: {e}")))
        })
        .await
        .map_err(|_| BuildError::Task("from"))??;
        if !config.is_object() {
            return Err(BuildError::Invalid(format!(
                "image config {digest} is not an object"
            )));
        }
        if let Some(object) = config.as_object_mut() {
            object.remove("rootfs");
            // The base's own build container says nothing about ours.
            object.remove("container");
            object.remove("container_config");
        }
        let layers = details
            .image
            .layers
            .iter()
            .map(|l| BuiltLayer {
                diff_id: l.diff_id,
                blob: Target {
                    media_type: oci_layer_type(&l.blob.media_type),
                    ..l.blob.clone()
                },
            })
            .collect();
        Ok(Stage {
            name: None,
            config,
            layers,
            args: Vars::new(),
            base_id: Some(details.image.id()),
            cmd_set: false,
            cache_key: details.image.id(),
        })
    }

    /// Stores the current state's config and manifest (leased, not
    /// recorded): the image a step's container or snapshot starts from.
    pub(super) async fn current_image(&mut self) -> Result<Image, BuildError> {
        let stage = self.stage().clone();
        let stores = self.stores.clone();
        let session = self.session.clone();
        tokio::task::spawn_blocking(move || {
            let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
            Ok(session.image(
                &stores.content,
                &stores.metadata,
                &stage.config,
                &stage.layers,
            )?)
        })
        .await
        .map_err(|_| BuildError::Task("image"))?
    }

    /// A key and mount directory for a step's snapshot.
    fn scratch(&self, what: &str) -> Result<(String, PathBuf), BuildError> {
        let id = crate::engine::containers::random_id()?;
        Ok((
            format!("build-{}", &id[..24]),
            self.work.join(format!("{what}-{}", &id[..8])),
        ))
    }

    pub(super) async fn workdir(
        &mut self,
        ins: &Instruction,
        vars: &Vars,
    ) -> Result<(), BuildError> {
        let path = dockerfile::word(&ins.args, vars).map_err(|e| ins.error(e))?;
        let current = self.stage().string("WorkingDir");
        let path = if path.starts_with('/') {
            clean(&path)
        } else {
            clean(&format!(
                "{}/{path}",
                if current.is_empty() { "/" } else { &current }
            ))
        };
        self.stage().run().insert("WorkingDir".into(), json!(path));
        let image = self.current_image().await?;
        let (key, dir) = self.scratch("workdir")?;
        let stores = self.stores.clone();
        let session = self.session.clone();
        let target = path.clone();
        let layer =
            tokio::task::spawn_blocking(move || -> Result<Option<BuiltLayer>, BuildError> {
                let mut rootfs = Rootfs::mount(&stores, &image, key, dir)?;
                let (_, made) = make_dirs(rootfs.root(), &target, (0, 0)).map_err(|e| {
                    BuildError::Invalid(format!("creating the working directory {target}: {e}"))
                })?;
                if !made {
                    return Ok(None);
                }
                let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
                Ok(Some(session.add_layer(
                    &stores.content,
                    &stores.metadata,
                    |out| rootfs.write_changes(out),
                )?))
            })
            .await
            .map_err(|_| BuildError::Task("workdir"))??;
        let stage = self.stage();
        let comment = stage.nop(&format!("WORKDIR {path}"));
        match layer {
            Some(layer) => {
                stage.layers.push(layer);
                stage.base_id = None;
                stage.history(comment, false);
            }
            None => {
                stage.base_id = None;
                stage.history(comment, true);
            }
        }
        Ok(())
    }

    pub(super) async fn run(&mut self, ins: &Instruction) -> Result<(), BuildError> {
        ins.check_flags(&[])?;
        let stage = self.stage().clone();
        let (command, arg_env, created_by) = run_plan(&stage, ins);
        let env = stage.env();
        let image = self.current_image().await?;
        let run_config = stage.config["config"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let details = ImageDetails {
            image: image.clone(),
            references: Vec::new(),
            config: Arc::new(ImageConfig {
                config: Some(run_config),
                ..ImageConfig::default()
            }),
            last_tag_time: None,
        };
        let request = CreateRequest {
            config: ContainerConfig {
                cmd: Some(command.clone()),
                entrypoint: Some(vec![String::new()]),
                env: Some(env.into_iter().chain(arg_env).collect()),
                working_dir: stage.string("WorkingDir"),
                user: stage.string("User"),
                image: image.id().to_string(),
                attach_stdout: true,
                attach_stderr: true,
                ..ContainerConfig::default()
            },
            ..CreateRequest::default()
        };
        let host = self.engine.host().clone();
        let (id, _) = self
            .engine
            .containers_blocking("create", move |store| {
                store.create(None, request, details, &host)
            })
            .await?;
        self.progress
            .say(format!(" ---> Running in {}\n", &id[..12]))
            .await;
        let result = self.run_container(&id, &command).await;
        if let Err(e) = self.engine.container_delete(&id, true, true).await {
            log::warning!("build: removing container {id}: {e}");
        }
        let layer = result?;
        self.progress
            .say(format!("Removing intermediate container {}\n", &id[..12]))
            .await;
        let stage = self.stage();
        stage.layers.push(layer);
        stage.base_id = None;
        stage.history(created_by, false);
        Ok(())
    }

    /// Starts the step's container, streams its output, and stores its
    /// writable layer once it exited with 0.
    async fn run_container(
        &mut self,
        id: &str,
        command: &[String],
    ) -> Result<BuiltLayer, BuildError> {
        let attach = self.engine.container_attach(id, false).await?;
        let exited = self
            .engine
            .container_wait(id, WaitCondition::NextExit, None)?;
        self.engine.container_start(id).await?;
        let progress = self.progress.clone();
        let output = tokio::spawn(async move {
            let Ok(Ok(mut attach)) = attach.await else {
                return;
            };
            let _ = tokio::task::spawn_blocking(move || {
                while let Ok(Some((_, bytes))) = attach.read_frame() {
                    progress.say_blocking(String::from_utf8_lossy(&bytes).into_owned());
                }
            })
            .await;
        });
        tokio::pin!(exited);
        let code = tokio::select! {
            code = &mut exited => code,
            () = self.progress.tx.closed() => {
                // The client went away: the step is not waited for.
                let _ = self.engine.container_kill(id, Some("KILL")).await;
                exited.await;
                let _ = output.await;
                return Err(BuildError::Invalid("build cancelled: the client went away".into()));
            }
        };
        let _ = output.await;
        if code != 0 {
            return Err(BuildError::RunFailed {
                command: command.join(" "),
                code,
            });
        }
        let stores = self.stores.clone();
        let session = self.session.clone();
        let key = id.to_owned();
        tokio::task::spawn_blocking(move || {
            use berth_snapshotter::Snapshotter;
            let upper = stores
                .snapshots
                .upper_dir(&key)
                .map_err(crate::engine::containers::ContainerError::from)?;
            let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
            Ok(session.add_layer(&stores.content, &stores.metadata, |out| {
                super::rootfs::write_diff(&upper, out)
            })?)
        })
        .await
        .map_err(|_| BuildError::Task("run"))?
    }

    pub(super) async fn copy(&mut self, ins: &Instruction, vars: &Vars) -> Result<(), BuildError> {
        let is_add = ins.keyword == "ADD";
        if ins.flag("chmod").is_some() {
            // moby's classic builder refuses it the same way.
            return Err(ins
                .error("the --chmod option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled")
                .into());
        }
        if is_add {
            ins.check_flags(&["chown"])?;
        } else {
            ins.check_flags(&["chown", "from"])?;
        }
        let err = |e: String| BuildError::from(ins.error(e));
        let (sources, dest) = copy_parts(ins, vars)?;
        let chown = match ins.flag("chown") {
            Some(spec) => Some(dockerfile::word(spec, vars).map_err(err)?),
            None => None,
        };
        let workdir = self.stage().string("WorkingDir");
        let dest_dir_form = dest.ends_with('/') || dest.ends_with("/.") || dest == ".";
        let dest_abs = if dest.starts_with('/') {
            clean(&dest)
        } else {
            clean(&format!(
                "{}/{dest}",
                if workdir.is_empty() { "/" } else { &workdir }
            ))
        };
        // Where the sources come from: the context, or another stage.
        let from_image = match ins.flag("from") {
            Some(from) => Some(self.copy_source_image(from).await?),
            None => None,
        };
        let image = self.current_image().await?;
        let (key, dir) = self.scratch("copy")?;
        let from_key = self.scratch("from")?;
        let stores = self.stores.clone();
        let session = self.session.clone();
        let context = self.context.clone();
        let work = self.work.clone();
        let keyword = ins.keyword.clone();
        let (layer, digest, kind) = tokio::task::spawn_blocking(move || {
            let source_view = match &from_image {
                Some(image) => Some(Rootfs::mount(&stores, image, from_key.0, from_key.1)?),
                None => None,
            };
            let source_root = match &source_view {
                Some(view) => view
                    .root()
                    .try_clone()
                    .map_err(io_err("opening", "source"))?,
                None => rustix::fs::open(
                    &context,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )
                .map_err(|e| BuildError::Io {
                    what: "opening",
                    path: "the build context".into(),
                    source: e.into(),
                })?,
            };
            let mut rootfs = Rootfs::mount(&stores, &image, key, dir)?;
            let owner = match &chown {
                Some(spec) => {
                    let user = crate::engine::spec::user::resolve_user(rootfs.path(), spec, &[])
                        .map_err(|e| BuildError::Invalid(format!("--chown={spec}: {e}")))?;
                    (user.uid, user.gid)
                }
                None => (0, 0),
            };
            let copier = Copier {
                keyword: &keyword,
                source_root: &source_root,
                rootfs: &rootfs,
                owner,
                is_add,
                scratch: work.join(format!("{}.tar", rootfs_name(&rootfs))),
            };
            let (digest, kind) = copier.copy_all(&sources, &dest_abs, dest_dir_form)?;
            // The view's descriptor goes before the view, or it stays busy.
            drop(copier);
            drop(source_root);
            drop(source_view);
            let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
            let layer = session.add_layer(&stores.content, &stores.metadata, |out| {
                rootfs.write_changes(out)
            })?;
            Ok::<_, BuildError>((layer, digest, kind))
        })
        .await
        .map_err(|_| BuildError::Task("copy"))??;
        let stage = self.stage();
        let comment = stage.nop(&format!(
            "{} {kind}:{} in {dest} ",
            ins.keyword,
            digest.hex()
        ));
        stage.layers.push(layer);
        stage.base_id = None;
        stage.history(comment, false);
        Ok(())
    }

    /// `COPY --from=`: a stage by name or index, else an image.
    async fn copy_source_image(&mut self, from: &str) -> Result<Image, BuildError> {
        let lower = from.to_ascii_lowercase();
        let found = self.stages[..self.stages.len() - 1]
            .iter()
            .enumerate()
            .find(|(i, s)| s.name.as_deref() == Some(lower.as_str()) || i.to_string() == from)
            .map(|(_, s)| s.clone());
        match found {
            Some(stage) => {
                let stores = self.stores.clone();
                let session = self.session.clone();
                tokio::task::spawn_blocking(move || {
                    let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
                    Ok(session.image(
                        &stores.content,
                        &stores.metadata,
                        &stage.config,
                        &stage.layers,
                    )?)
                })
                .await
                .map_err(|_| BuildError::Task("copy"))?
            }
            None => Ok(self.base_stage_image(from).await?),
        }
    }

    async fn base_stage_image(&self, name: &str) -> Result<Image, BuildError> {
        match self.engine.image_inspect(name).await {
            Ok(details) => Ok(details.image),
            Err(e) if e.kind() == crate::engine::ErrorKind::NotFound => Err(BuildError::NotFound(
                format!("invalid from flag value {name}: {e}"),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

fn rootfs_name(rootfs: &Rootfs) -> String {
    rootfs
        .path()
        .file_name()
        .map_or_else(|| "copy".to_owned(), |n| n.to_string_lossy().into_owned())
}
