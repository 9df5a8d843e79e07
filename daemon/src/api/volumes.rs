//! Volume routes (`/volumes`, moby's shapes) and the `Mounts` of a
//! container as inspect and the container list show them.

use std::collections::BTreeMap;

use http::{Method, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::body::{MAX_JSON_BODY, read_json};
use super::containers_types::MountPoint as WireMountPoint;
use super::error::status_for;
use super::response::{empty_body, json, json_with_status};
use super::{ApiError, ApiResult, Call, Router};
use crate::engine::Engine;
use crate::engine::containers::{Record, from_nanos};
use crate::engine::volumes::{
    CreateVolume, MountKind, Volume, VolumeError, VolumeStore, disk_usage,
};

pub(crate) fn routes(router: &mut Router) {
    router
        .get("/volumes", list)
        .add(Method::POST, "/volumes/create", create)
        .add(Method::POST, "/volumes/prune", prune)
        .get("/volumes/{name}", inspect)
        .add(Method::DELETE, "/volumes/{name}", remove);
}

impl From<VolumeError> for ApiError {
    fn from(err: VolumeError) -> ApiError {
        ApiError::new(status_for(err.kind()), err.to_string())
    }
}

/// moby's `volume.Volume`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct VolumeBody {
    created_at: String,
    driver: String,
    labels: Option<BTreeMap<String, String>>,
    mountpoint: String,
    name: String,
    options: Option<BTreeMap<String, String>>,
    scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_data: Option<UsageData>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct UsageData {
    size: i64,
    ref_count: i64,
}

fn body_of(store: &VolumeStore, volume: Volume) -> VolumeBody {
    VolumeBody {
        created_at: humantime::format_rfc3339_seconds(from_nanos(volume.created_at)).to_string(),
        mountpoint: store.data_path(&volume.name).display().to_string(),
        driver: volume.driver,
        labels: volume.labels,
        name: volume.name,
        options: volume.options,
        scope: "local",
        usage_data: None,
    }
}

/// `POST /volumes/create` body (moby `volume.CreateOptions`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

async fn create(call: Call) -> ApiResult {
    let engine = call.engine.clone();
    let (parts, body) = call.req.into_parts();
    let body: CreateBody = read_json(&parts.headers, body, MAX_JSON_BODY)
        .await?
        .unwrap_or_default();
    let request = CreateVolume {
        name: body.name.unwrap_or_default(),
        driver: body.driver.unwrap_or_default(),
        labels: body.labels,
        options: body.driver_opts.filter(|o| !o.is_empty()),
    };
    let body = engine
        .volumes_blocking("create", move |store| {
            let volume = store.create(request)?;
            Ok(body_of(store, volume))
        })
        .await?;
    Ok(json_with_status(StatusCode::CREATED, &body))
}

async fn list(call: Call) -> ApiResult {
    let filters = call.query.filters()?;
    let volumes = call
        .engine
        .volumes_blocking("list", move |store| {
            Ok(store
                .list(&filters)?
                .into_iter()
                .map(|v| body_of(store, v))
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(json(&json!({ "Volumes": volumes, "Warnings": null })))
}

fn name(call: &Call) -> String {
    call.params.get("name").unwrap_or_default().to_owned()
}

async fn inspect(call: Call) -> ApiResult {
    let store = call.engine.volumes();
    let volume = store.get(&name(&call))?;
    Ok(json(&body_of(store, volume)))
}

async fn remove(call: Call) -> ApiResult {
    let name = name(&call);
    let force = call.query.bool("force");
    call.engine
        .volumes_blocking("remove", move |store| store.remove(&name, force))
        .await?;
    let mut response = Response::new(empty_body());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

async fn prune(call: Call) -> ApiResult {
    let filters = call.query.filters()?;
    let (removed, reclaimed) = call
        .engine
        .volumes_blocking("prune", move |store| store.prune(&filters))
        .await?;
    Ok(json(&json!({
        "VolumesDeleted": removed,
        "SpaceReclaimed": reclaimed,
    })))
}

/// `Volumes` of `GET /system/df`: each local volume without driver options
/// (moby leaves those out) with its size and reference count.
pub(super) async fn disk_usage_volumes(
    engine: &Engine,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let volumes = engine
        .volumes_blocking("disk usage", |store| {
            Ok(store
                .list_all()
                .into_iter()
                .filter(|usage| usage.volume.options.as_ref().is_none_or(BTreeMap::is_empty))
                .map(|usage| {
                    let size = disk_usage(&store.data_path(&usage.volume.name));
                    let mut body = body_of(store, usage.volume);
                    body.usage_data = Some(UsageData {
                        size: size as i64,
                        ref_count: usage.ref_count as i64,
                    });
                    serde_json::to_value(body).unwrap_or_default()
                })
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(volumes)
}

/// `Mounts` of a container, as dockerd shows them.
pub(super) fn mounts_of(engine: &Engine, record: &Record) -> Vec<WireMountPoint> {
    record
        .mount_points
        .iter()
        .map(|point| {
            let (name, source, driver) = match point.kind {
                MountKind::Volume => (
                    point.source.clone(),
                    engine
                        .volumes()
                        .data_path(&point.source)
                        .display()
                        .to_string(),
                    point.driver.clone(),
                ),
                MountKind::Bind => (String::new(), point.source.clone(), String::new()),
                MountKind::Tmpfs => (String::new(), String::new(), String::new()),
            };
            WireMountPoint {
                r#type: point.kind.as_str().to_owned(),
                name,
                source,
                destination: point.destination.clone(),
                driver,
                mode: point.mode.clone(),
                rw: point.rw,
                propagation: point.propagation.clone(),
            }
        })
        .collect()
}
