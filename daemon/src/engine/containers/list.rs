//! `GET /containers/json` (Docker's filters, newest first) and
//! `POST /containers/prune`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use berth_snapshotter::Snapshotter;

use super::{ContainerError, Record, Status};
use crate::engine::Engine;
use crate::engine::disk_usage::ContainerUsage;
use crate::engine::filters::Filters;

/// Filters `GET /containers/json` accepts.
const LIST_FILTERS: &[&str] = &[
    "id", "name", "label", "status", "ancestor", "exited", "before", "since", "network", "volume",
];

/// What `GET /containers/json` asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListOptions {
    pub(crate) all: bool,
    /// Positive: the newest N (implies `all`).
    pub(crate) limit: Option<i64>,
    pub(crate) filters: Filters,
}

impl Engine {
    /// `GET /containers/json`: newest first.
    pub(crate) async fn container_list(
        &self,
        opts: ListOptions,
    ) -> Result<Vec<Record>, ContainerError> {
        opts.filters
            .validate(LIST_FILTERS)
            .map_err(|e| ContainerError::InvalidConfig(e.to_string()))?;
        let filters = &opts.filters;
        let mut statuses = Vec::new();
        for value in filters.get("status") {
            statuses.push(Status::parse(value).ok_or_else(|| {
                ContainerError::InvalidConfig(format!("invalid filter 'status={value}'"))
            })?);
        }
        let mut exited = Vec::new();
        for value in filters.get("exited") {
            exited.push(value.parse::<i64>().map_err(|_| {
                ContainerError::InvalidConfig(format!("invalid filter 'exited={value}'"))
            })?);
        }
        let bound = |key: &str| -> Result<Option<i64>, ContainerError> {
            let mut out = None;
            for value in filters.get(key) {
                out = Some(self.containers.get(value)?.record().created);
            }
            Ok(out)
        };
        let before = bound("before")?;
        let since = bound("since")?;
        // `ancestor`: an image reference or ID, compared by image ID.
        let mut ancestors = Vec::new();
        for value in filters.get("ancestor") {
            ancestors.push(value.to_owned());
            if let Ok(details) = self.image_inspect(value).await {
                ancestors.push(details.id());
            }
        }
        let mut records: Vec<Record> = self.containers.all().iter().map(|c| c.record()).collect();
        records.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        let limit = opts.limit.filter(|l| *l > 0);
        let all = opts.all || limit.is_some() || !statuses.is_empty() || !exited.is_empty();
        let name_matches = |pattern: &str, name: &str| {
            let bare = name.trim_start_matches('/');
            match (pattern.strip_prefix('^'), pattern.strip_suffix('$')) {
                _ if pattern.starts_with('^') && pattern.ends_with('$') && pattern.len() >= 2 => {
                    let inner = &pattern[1..pattern.len() - 1];
                    bare == inner.trim_start_matches('/') || name == inner
                }
                (Some(rest), _) => {
                    bare.starts_with(rest.trim_start_matches('/')) || name.starts_with(rest)
                }
                (_, Some(rest)) => name.ends_with(rest),
                _ => name.contains(pattern),
            }
        };
        let out: Vec<Record> = records
            .into_iter()
            .filter(|r| {
                (all || r.state.status.is_running())
                    && filters.any_or_absent("id", |p| r.id.starts_with(p))
                    && filters.any_or_absent("name", |p| name_matches(p, &r.name))
                    && filters.labels_match(
                        "label",
                        &r.config
                            .labels
                            .clone()
                            .unwrap_or_default()
                            .into_iter()
                            .collect(),
                    )
                    && (statuses.is_empty() || statuses.contains(&r.state.status))
                    && (exited.is_empty()
                        || (r.state.status == Status::Exited
                            && exited.contains(&r.state.exit_code)))
                    && (ancestors.is_empty()
                        || ancestors.iter().any(|a| {
                            *a == r.config.image
                                || *a == r.image_id
                                || r.image_id
                                    .trim_start_matches("sha256:")
                                    .starts_with(a.as_str())
                        }))
                    // `volume`: a volume name, a bind source or a mount destination.
                    && filters.any_or_absent("volume", |v| {
                        r.mount_points
                            .iter()
                            .any(|m| m.source == v || m.destination == v)
                    })
                    && filters.any_or_absent("network", |n| {
                        r.host_config.network_mode == n
                            || r.networks
                                .iter()
                                .any(|(name, a)| name == n || a.network_id.starts_with(n))
                    })
                    && before.is_none_or(|b| r.created < b)
                    && since.is_none_or(|s| r.created > s)
            })
            .take(limit.map_or(usize::MAX, |l| l as usize))
            .collect();
        Ok(out)
    }

    /// `POST /containers/prune`: removes stopped containers (filters
    /// `until`, `label`, `label!`); their IDs.
    pub(crate) async fn container_prune(
        &self,
        filters: Filters,
    ) -> Result<Vec<String>, ContainerError> {
        filters
            .validate(&["until", "label", "label!"])
            .map_err(|e| ContainerError::InvalidConfig(e.to_string()))?;
        let mut until = None;
        for value in filters.get("until") {
            until = Some(parse_until(value)?);
        }
        let mut removed = Vec::new();
        for container in self.containers.all() {
            let record = container.record();
            let labels: BTreeMap<String, String> = record
                .config
                .labels
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect();
            let excluded = filters.contains("label!") && {
                let mut any = false;
                for wanted in filters.get("label!") {
                    any |= match wanted.split_once('=') {
                        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                        None => labels.contains_key(wanted),
                    };
                }
                any
            };
            if record.state.status.is_running()
                || until.is_some_and(|u| record.created > u)
                || !filters.labels_match("label", &labels)
                || excluded
            {
                continue;
            }
            let store = self.containers.clone();
            let id = record.id.clone();
            self.containers_blocking("prune", move |_| store.remove(&container, false))
                .await?;
            removed.push(id);
        }
        Ok(removed)
    }
}

/// A prune `until`: Unix seconds, RFC 3339, or a duration ago (`10m`);
/// in Unix nanoseconds.
fn parse_until(value: &str) -> Result<i64, ContainerError> {
    if let Ok(seconds) = value.parse::<f64>() {
        return Ok((seconds * 1e9) as i64);
    }
    if let Ok(time) = humantime::parse_rfc3339_weak(value) {
        return Ok(crate::engine::events::unix_nanos(time));
    }
    humantime::parse_duration(value)
        .ok()
        .and_then(|ago| SystemTime::now().checked_sub(ago))
        .map(crate::engine::events::unix_nanos)
        .ok_or_else(|| ContainerError::InvalidConfig(format!("invalid filter 'until={value}'")))
}

impl Engine {
    /// Every container with the bytes in its writable layer (0 for one
    /// whose layer is gone).
    pub(crate) async fn container_disk_usage(&self) -> Result<Vec<ContainerUsage>, ContainerError> {
        let records: Vec<Record> = self.containers.all().iter().map(|c| c.record()).collect();
        self.layer_usage(records).await
    }

    /// `records` with the bytes in each one's writable layer (`ps -s`,
    /// `system df`).
    pub(crate) async fn layer_usage(
        &self,
        records: Vec<Record>,
    ) -> Result<Vec<ContainerUsage>, ContainerError> {
        let snapshots = self.containers.images.snapshots.clone();
        tokio::task::spawn_blocking(move || {
            records
                .into_iter()
                .map(|record| {
                    let size_rw = snapshots.usage(&record.id).map_or(0, |u| u.size);
                    ContainerUsage { record, size_rw }
                })
                .collect()
        })
        .await
        .map_err(|_| ContainerError::Task("disk usage"))
    }
}
