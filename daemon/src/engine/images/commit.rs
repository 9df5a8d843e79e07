//! The image half of `docker commit`: the new image's config (the
//! container's, with `--change` applied) and its record. The container
//! half (pause, the writable layer as a diff tar) is in
//! `containers::archive`.

use std::io::{self, Write};

use berth_core::{CommitConfig, ImportConfig, archive};
use serde_json::{Map, Value, json};

use super::{Engine, ImageDetails, ImageError, changes, tag_reference};
use crate::api::containers_types::ContainerConfig;

/// What `POST /commit` asks for besides the container.
#[derive(Debug, Clone, Default)]
pub(crate) struct CommitRequest {
    pub(crate) repo: String,
    pub(crate) tag: String,
    pub(crate) comment: String,
    pub(crate) author: String,
    pub(crate) changes: Vec<String>,
    /// A config from the request body (docker-py's `conf`): what it sets
    /// wins over the container's, as moby merges them.
    pub(crate) config: Option<ContainerConfig>,
}

/// `container` with what `overrides` sets.
fn merged(container: &ContainerConfig, overrides: Option<&ContainerConfig>) -> ContainerConfig {
    let mut out = container.clone();
    let Some(o) = overrides else {
        return out;
    };
    if o.cmd.as_ref().is_some_and(|c| !c.is_empty()) {
        out.cmd = o.cmd.clone();
    }
    if o.entrypoint.as_ref().is_some_and(|e| !e.is_empty()) {
        out.entrypoint = o.entrypoint.clone();
    }
    if o.env.as_ref().is_some_and(|e| !e.is_empty()) {
        out.env = o.env.clone();
    }
    if !o.working_dir.is_empty() {
        out.working_dir = o.working_dir.clone();
    }
    if !o.user.is_empty() {
        out.user = o.user.clone();
    }
    if o.labels.as_ref().is_some_and(|l| !l.is_empty()) {
        out.labels = o.labels.clone();
    }
    out
}

/// The image config's `config`: the container's, with the settings the
/// changes can touch taken from `changed`.
fn runtime_config(container: &ContainerConfig, changed: &ImportConfig) -> Map<String, Value> {
    let mut map = match serde_json::to_value(container) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let mut set = |key: &str, value: Value| {
        map.insert(key.to_owned(), value);
    };
    set("Cmd", json!(changed.cmd));
    set("Entrypoint", json!(changed.entrypoint));
    set("Env", json!(changed.env));
    set(
        "WorkingDir",
        json!(changed.working_dir.clone().unwrap_or_default()),
    );
    set("User", json!(changed.user.clone().unwrap_or_default()));
    let as_set = |list: &[String]| -> Value {
        if list.is_empty() {
            Value::Null
        } else {
            list.iter()
                .map(|k| (k.clone(), json!({})))
                .collect::<Map<_, _>>()
                .into()
        }
    };
    set("ExposedPorts", as_set(&changed.exposed_ports));
    set("Volumes", as_set(&changed.volumes));
    set(
        "Labels",
        if changed.labels.is_empty() {
            Value::Null
        } else {
            json!(changed.labels)
        },
    );
    // Skipped when empty, as moby writes it.
    match &changed.stop_signal {
        Some(signal) => map.insert("StopSignal".to_owned(), json!(signal)),
        None => map.remove("StopSignal"),
    };
    map
}

/// The container's settings in the form `--change` edits.
fn import_config_of(config: &ContainerConfig) -> ImportConfig {
    ImportConfig {
        cmd: config.cmd.clone(),
        entrypoint: config.entrypoint.clone(),
        env: config.env.clone().unwrap_or_default(),
        working_dir: Some(config.working_dir.clone()).filter(|w| !w.is_empty()),
        user: Some(config.user.clone()).filter(|u| !u.is_empty()),
        labels: config.labels.clone().unwrap_or_default(),
        exposed_ports: config
            .exposed_ports
            .iter()
            .flat_map(|p| p.keys().cloned())
            .collect(),
        volumes: config
            .volumes
            .iter()
            .flat_map(|v| v.keys().cloned())
            .collect(),
        stop_signal: Some(config.stop_signal.clone()).filter(|s| !s.is_empty()),
        message: None,
    }
}

impl Engine {
    /// Checks the request (reference, changes) before any work is done;
    /// returns the settings to commit with.
    pub(crate) fn image_commit_plan(
        &self,
        request: &CommitRequest,
        container: &ContainerConfig,
    ) -> Result<(Option<berth_core::Reference>, Map<String, Value>), ImageError> {
        let reference = match request.repo.as_str() {
            "" => None,
            repo => Some(tag_reference("commit", repo, &request.tag)?),
        };
        let container = merged(container, request.config.as_ref());
        let mut changed = import_config_of(&container);
        changes::apply(&mut changed, &request.changes)?;
        Ok((reference, runtime_config(&container, &changed)))
    }

    /// Stores the layer `write_layer` writes on top of `parent` as a new
    /// image; returns its ID.
    pub(crate) async fn image_commit(
        &self,
        parent: ImageDetails,
        reference: Option<berth_core::Reference>,
        config: CommitConfig,
        write_layer: impl FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
    ) -> Result<String, ImageError> {
        let (id, _) = self
            .store_new_image("commit", reference, move |stores, reference| {
                archive::commit(
                    &stores.content,
                    &stores.metadata,
                    &parent.image,
                    write_layer,
                    reference,
                    &config,
                )
            })
            .await?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_over_the_containers_config() {
        let container = ContainerConfig {
            cmd: Some(vec!["sh".into()]),
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            working_dir: "/w".into(),
            ..ContainerConfig::default()
        };
        let mut changed = import_config_of(&container);
        changes::apply(
            &mut changed,
            &["CMD [\"cat\", \"/x\"]".to_owned(), "ENV A=2".to_owned()],
        )
        .unwrap();
        let map = runtime_config(&container, &changed);
        assert_eq!(map["Cmd"], json!(["cat", "/x"]));
        assert_eq!(map["Env"], json!(["PATH=/bin", "A=2"]));
        assert_eq!(map["WorkingDir"], "/w");
        assert_eq!(map["Labels"], Value::Null);

        let body = ContainerConfig {
            cmd: Some(vec!["true".into()]),
            user: "1000".into(),
            ..ContainerConfig::default()
        };
        let both = merged(&container, Some(&body));
        assert_eq!(both.cmd, body.cmd);
        assert_eq!(both.user, "1000");
        assert_eq!(both.env, container.env);
    }
}
