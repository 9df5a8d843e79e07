//! `docker exec`: exec instances (created, started, exited) and the start
//! of the process through the container's shim. The process gets the
//! container's spec process (capabilities, rlimits, user) with the exec's
//! command, environment, working directory, user and tty. The API layer
//! relays its stdio and calls [`Engine::exec_finished`] with the exit code
//! before it closes the client's stream, so `GET /exec/{id}/json` already
//! has the final `ExitCode` when the client asks.

use std::sync::{Arc, Mutex};

use berth_core::DetachKeys;
use oci_spec::runtime::{BoxBuilder, Spec, UserBuilder};
use serde::Deserialize;

use super::{ContainerError, Status, lock};
use crate::engine::Engine;
use crate::engine::spec::user::resolve_user;

/// `POST /containers/{id}/exec` body (moby's `ExecOptions`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ExecConfig {
    pub(crate) user: Option<String>,
    pub(crate) privileged: bool,
    pub(crate) tty: bool,
    pub(crate) console_size: Option<[u32; 2]>,
    pub(crate) attach_stdin: bool,
    pub(crate) attach_stderr: bool,
    pub(crate) attach_stdout: bool,
    pub(crate) detach_keys: Option<String>,
    pub(crate) env: Option<Vec<String>>,
    pub(crate) working_dir: Option<String>,
    pub(crate) cmd: Option<Vec<String>>,
}

/// Where an exec instance is.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExecState {
    pub(crate) started: bool,
    pub(crate) running: bool,
    pub(crate) exit_code: Option<i64>,
    pub(crate) pid: i64,
}

#[derive(Debug)]
pub(crate) struct ExecInstance {
    pub(crate) id: String,
    pub(crate) container_id: String,
    pub(crate) config: ExecConfig,
    pub(crate) state: Mutex<ExecState>,
}

impl ExecInstance {
    pub(crate) fn state(&self) -> ExecState {
        lock(&self.state).clone()
    }

    fn command_text(&self) -> String {
        self.config.cmd.clone().unwrap_or_default().join(" ")
    }
}

impl Engine {
    /// `POST /containers/{id}/exec`: the new instance's ID.
    pub(crate) fn exec_create(
        &self,
        reference: &str,
        config: ExecConfig,
    ) -> Result<String, ContainerError> {
        let container = self.containers.get(reference)?;
        let status = lock(&container.record).state.status;
        match status {
            Status::Paused => return Err(ContainerError::ExecPaused(reference.to_owned())),
            status if !status.is_running() => {
                return Err(ContainerError::NotRunning(container.id.clone()));
            }
            _ => {}
        }
        if config.cmd.as_ref().is_none_or(Vec::is_empty) {
            return Err(ContainerError::InvalidConfig(
                "No exec command specified".to_owned(),
            ));
        }
        if let Some(keys) = &config.detach_keys {
            DetachKeys::parse(keys).map_err(|e| ContainerError::InvalidConfig(e.to_string()))?;
        }
        let id = super::random_id()?;
        let instance = Arc::new(ExecInstance {
            id: id.clone(),
            container_id: container.id.clone(),
            config,
            state: Mutex::new(ExecState::default()),
        });
        let action = format!("exec_create: {}", instance.command_text());
        lock(&self.containers.execs).insert(id.clone(), instance);
        self.containers
            .publish(&action, &container.record(), &[("execID", id.clone())]);
        Ok(id)
    }

    pub(crate) fn exec_get(&self, id: &str) -> Result<Arc<ExecInstance>, ContainerError> {
        lock(&self.containers.execs)
            .get(id)
            .cloned()
            .ok_or_else(|| ContainerError::ExecNotFound(id.to_owned()))
    }

    /// The exec IDs of a container (inspect's `ExecIDs`).
    pub(crate) fn exec_ids(&self, container_id: &str) -> Vec<String> {
        lock(&self.containers.execs)
            .values()
            .filter(|e| e.container_id == container_id)
            .map(|e| e.id.clone())
            .collect()
    }

    /// Starts the process of exec `id`; the caller relays its stdio.
    pub(crate) async fn exec_start(
        &self,
        id: &str,
        tty: bool,
    ) -> Result<(Arc<ExecInstance>, berth_shim::client::Exec), ContainerError> {
        let instance = self.exec_get(id)?;
        {
            let mut state = lock(&instance.state);
            if state.started {
                return Err(ContainerError::InvalidConfig(format!(
                    "Exec session {id} has already been started"
                )));
            }
            state.started = true;
            state.running = true;
        }
        let container = self.containers.get(&instance.container_id)?;
        let client = self.running_shim(&container)?;
        let store = self.containers.clone();
        let inst = instance.clone();
        let started = tokio::task::spawn_blocking(move || {
            let bundle = store.run_dir(&inst.container_id);
            let spec = Spec::load(bundle.join("config.json")).map_err(|e| ContainerError::Io {
                what: "reading",
                path: bundle.join("config.json"),
                source: std::io::Error::other(e.to_string()),
            })?;
            let mut process = spec.process().clone().unwrap_or_default();
            let config = &inst.config;
            process.set_args(config.cmd.clone());
            let tty = tty || config.tty;
            process.set_terminal(Some(tty));
            process.set_console_size(None);
            if tty
                && let Some([h, w]) = config.console_size
                && h > 0
                && w > 0
            {
                process.set_console_size(
                    BoxBuilder::default()
                        .height(u64::from(h))
                        .width(u64::from(w))
                        .build()
                        .ok(),
                );
            }
            let mut env = process.env().clone().unwrap_or_default();
            for entry in config.env.iter().flatten() {
                let key = entry.split('=').next().unwrap_or(entry);
                env.retain(|e| e.split('=').next() != Some(key));
                env.push(entry.clone());
            }
            process.set_env(Some(env));
            if let Some(dir) = config.working_dir.as_deref().filter(|d| !d.is_empty()) {
                process.set_cwd(dir.into());
            }
            if let Some(user) = config.user.as_deref().filter(|u| !u.is_empty()) {
                let resolved = resolve_user(&store.rootfs_path(&inst.container_id), user, &[])?;
                process.set_user(
                    UserBuilder::default()
                        .uid(resolved.uid)
                        .gid(resolved.gid)
                        .additional_gids(resolved.additional_gids)
                        .build()
                        .map_err(|e| ContainerError::InvalidConfig(e.to_string()))?,
                );
            }
            client
                .exec(&process, config.attach_stdin)
                .map_err(|source| match source {
                    berth_shim::ClientError::Shim { message, .. } => ContainerError::Start {
                        id: inst.container_id.clone(),
                        message,
                    },
                    source => ContainerError::Shim {
                        id: inst.container_id.clone(),
                        source,
                    },
                })
        })
        .await
        .map_err(|_| ContainerError::Task("exec"))?;
        match started {
            Ok(exec) => {
                lock(&instance.state).pid = i64::from(exec.pid);
                self.containers.publish(
                    &format!("exec_start: {}", instance.command_text()),
                    &container.record(),
                    &[("execID", instance.id.clone())],
                );
                Ok((instance, exec))
            }
            Err(err) => {
                let text = err.to_string();
                let code = if text.contains("permission denied") {
                    126
                } else {
                    127
                };
                self.exec_finished(&instance, code);
                Err(err)
            }
        }
    }

    /// The exec's client typed its detach keys: docker's `exec_detach`
    /// event (the process runs on).
    pub(crate) fn exec_detached(&self, instance: &ExecInstance) {
        if let Ok(container) = self.containers.get(&instance.container_id) {
            self.containers.publish(
                "exec_detach",
                &container.record(),
                &[("execID", instance.id.clone())],
            );
        }
    }

    /// Records the exit of an exec'd process.
    pub(crate) fn exec_finished(&self, instance: &ExecInstance, exit_code: i64) {
        {
            let mut state = lock(&instance.state);
            state.running = false;
            state.exit_code = Some(exit_code);
        }
        if let Ok(container) = self.containers.get(&instance.container_id) {
            self.containers.publish(
                "exec_die",
                &container.record(),
                &[
                    ("execID", instance.id.clone()),
                    ("exitCode", exit_code.to_string()),
                ],
            );
        }
    }
}
