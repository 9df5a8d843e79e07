//! Network routes: list, inspect, create, remove, prune, connect and
//! disconnect, with moby's wire shapes (`network.Inspect`).

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::body::{MAX_JSON_BODY, read_json};
use super::containers_types::rfc3339_nano;
use super::error::status_for;
use super::response::{empty_body, json, json_with_status};
use super::{ApiError, ApiResult, Call, Router};
use crate::engine::Engine;
use crate::engine::containers::from_nanos;
use crate::engine::networks::{CreateNetwork, NetError, NetworkView};

pub(crate) fn routes(router: &mut Router) {
    router
        .get("/networks", list)
        .get("/networks/", list)
        .add(Method::POST, "/networks/create", create)
        .add(Method::POST, "/networks/prune", prune)
        .get("/networks/{id}", inspect)
        .add(Method::DELETE, "/networks/{id}", remove)
        .add(Method::POST, "/networks/{id}/connect", connect)
        .add(Method::POST, "/networks/{id}/disconnect", disconnect);
}

impl From<NetError> for ApiError {
    fn from(err: NetError) -> ApiError {
        ApiError::new(status_for(err.kind()), err.to_string())
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct IpamConfig {
    subnet: String,
    gateway: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Ipam {
    driver: String,
    options: Option<BTreeMap<String, String>>,
    config: Vec<IpamConfig>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct EndpointResource {
    name: String,
    #[serde(rename = "EndpointID")]
    endpoint_id: String,
    mac_address: String,
    #[serde(rename = "IPv4Address")]
    ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    ipv6_address: String,
}

/// Moby's `network.Inspect` (also each item of the list).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkResource {
    name: String,
    id: String,
    created: String,
    scope: String,
    driver: String,
    #[serde(rename = "EnableIPv4")]
    enable_ipv4: bool,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    ipam: Ipam,
    internal: bool,
    attachable: bool,
    ingress: bool,
    config_from: serde_json::Value,
    config_only: bool,
    containers: BTreeMap<String, EndpointResource>,
    options: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
}

fn resource(engine: &Engine, view: &NetworkView, with_containers: bool) -> NetworkResource {
    let meta = &view.meta;
    let config = view
        .info
        .iter()
        .map(|info| IpamConfig {
            subnet: info.subnet.to_string(),
            gateway: info.gateway.to_string(),
        })
        .collect();
    let mut containers = BTreeMap::new();
    if with_containers {
        for member in engine.network_members(&meta.name) {
            containers.insert(
                member.id,
                EndpointResource {
                    name: member.name,
                    endpoint_id: member.endpoint.endpoint_id,
                    mac_address: String::new(),
                    ipv4_address: format!(
                        "{}/{}",
                        member.endpoint.address,
                        member.endpoint.subnet.prefix()
                    ),
                    ipv6_address: String::new(),
                },
            );
        }
    }
    NetworkResource {
        name: meta.name.clone(),
        id: meta.id.clone(),
        created: rfc3339_nano(Some(from_nanos(meta.created))),
        scope: "local".to_owned(),
        driver: meta.driver.clone(),
        enable_ipv4: true,
        enable_ipv6: false,
        ipam: Ipam {
            driver: "default".to_owned(),
            options: (meta.driver == "bridge").then(BTreeMap::new),
            config,
        },
        internal: meta.internal,
        attachable: meta.attachable,
        ingress: false,
        config_from: json!({ "Network": "" }),
        config_only: false,
        containers,
        options: meta.options.clone(),
        labels: meta.labels.clone(),
    }
}

/// Runs blocking network work off the async threads.
async fn blocking<T: Send + 'static>(
    engine: &std::sync::Arc<Engine>,
    f: impl FnOnce(&Engine) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || f(&engine))
        .await
        .map_err(|_| ApiError::internal("internal error: network task failed"))?
}

async fn list(call: Call) -> ApiResult {
    let filters = call.query.filters()?;
    filters.validate(&["dangling", "driver", "id", "label", "name", "scope", "type"])?;
    let resources = blocking(&call.engine, move |engine| {
        let in_use = engine.networks().in_use();
        let mut out = Vec::new();
        for view in engine.networks().list()? {
            let meta = &view.meta;
            let keep = filters.any_or_absent("name", |n| meta.name.contains(n))
                && filters.any_or_absent("id", |i| meta.id.starts_with(i))
                && filters.any_or_absent("driver", |d| meta.driver == d)
                && filters.any_or_absent("scope", |s| s == "local")
                && filters.any_or_absent("type", |t| match t {
                    "builtin" => view.is_predefined(),
                    "custom" => !view.is_predefined(),
                    _ => false,
                })
                && filters.any_or_absent("dangling", |d| {
                    let dangling = !view.is_predefined() && !in_use.contains(&meta.name);
                    matches!((d, dangling), ("true" | "1", true) | ("false" | "0", false))
                })
                && filters.labels_match("label", &meta.labels);
            if keep {
                out.push(resource(engine, &view, false));
            }
        }
        Ok(out)
    })
    .await?;
    Ok(json(&resources))
}

async fn inspect(call: Call) -> ApiResult {
    let id = call.params.get("id").unwrap_or_default().to_owned();
    let resource = blocking(&call.engine, move |engine| {
        let view = engine.networks().find(&id)?;
        Ok(resource(engine, &view, true))
    })
    .await?;
    Ok(json(&resource))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IpamRequestConfig {
    #[serde(default)]
    subnet: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default, rename = "IPRange")]
    ip_range: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IpamRequest {
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    config: Option<Vec<IpamRequestConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    attachable: bool,
    #[serde(default, rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(default, rename = "IPAM")]
    ipam: Option<IpamRequest>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    options: Option<BTreeMap<String, String>>,
}

async fn create(call: Call) -> ApiResult {
    let engine = call.engine.clone();
    let (parts, body) = call.req.into_parts();
    let request: CreateRequest = read_json(&parts.headers, body, MAX_JSON_BODY)
        .await?
        .unwrap_or_default();
    if request.name.is_empty() {
        return Err(ApiError::bad_request("network name must not be empty"));
    }
    if request.enable_ipv6 == Some(true) {
        return Err(ApiError::bad_request(
            "IPv6 networks are not supported by berthd yet",
        ));
    }
    let ipam = request.ipam.unwrap_or_default();
    if let Some(driver) = ipam
        .driver
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "default")
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("plugin \"{driver}\" not found"),
        ));
    }
    let configs = ipam.config.unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::bad_request(
            "berthd networks take one IPv4 subnet (--subnet given more than once)",
        ));
    }
    let config = configs.into_iter().next().unwrap_or_default();
    if config.ip_range.as_deref().is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(
            "--ip-range is not supported by berthd yet",
        ));
    }
    let create = CreateNetwork {
        name: request.name,
        driver: request.driver.unwrap_or_default(),
        subnet: config.subnet,
        gateway: config.gateway,
        internal: request.internal,
        attachable: request.attachable,
        labels: request.labels.unwrap_or_default(),
        options: request.options.unwrap_or_default(),
    };
    let view = blocking(&engine, move |engine| {
        Ok(engine.networks().create(create)?)
    })
    .await?;
    Ok(json_with_status(
        StatusCode::CREATED,
        &json!({ "Id": view.meta.id, "Warning": "" }),
    ))
}

async fn remove(call: Call) -> ApiResult {
    let id = call.params.get("id").unwrap_or_default().to_owned();
    blocking(&call.engine, move |engine| {
        Ok(engine.networks().remove(&id)?)
    })
    .await?;
    let mut response = http::Response::new(empty_body());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

async fn prune(call: Call) -> ApiResult {
    let filters = call.query.filters()?;
    filters.validate(&["label", "label!", "until"])?;
    let until = filters
        .get("until")
        .next()
        .map(|u| {
            humantime::parse_rfc3339_weak(u)
                .map(crate::engine::events::unix_nanos)
                .or_else(|_| {
                    humantime::parse_duration(u).map(|d| {
                        crate::engine::events::unix_nanos(std::time::SystemTime::now() - d)
                    })
                })
                .map_err(|_| ApiError::bad_request(format!("invalid until filter: {u}")))
        })
        .transpose()?;
    let removed = blocking(&call.engine, move |engine| {
        let mut removed = Vec::new();
        for view in engine.networks().list()? {
            let meta = &view.meta;
            let excluded = filters.get("label!").any(|l| match l.split_once('=') {
                Some((k, v)) => meta.labels.get(k).is_some_and(|x| x == v),
                None => meta.labels.contains_key(l),
            });
            if view.is_predefined()
                || !filters.labels_match("label", &meta.labels)
                || excluded
                || until.is_some_and(|u| meta.created >= u)
            {
                continue;
            }
            match engine.networks().remove(&meta.id) {
                Ok(()) => removed.push(meta.name.clone()),
                Err(NetError::InUse { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(removed)
    })
    .await?;
    Ok(json(&json!({
        "NetworksDeleted": (!removed.is_empty()).then_some(removed),
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConnectRequest {
    #[serde(default)]
    container: String,
    #[serde(default)]
    endpoint_config: Option<serde_json::Value>,
    #[serde(default)]
    #[allow(dead_code)] // an unknown endpoint is always dropped
    force: bool,
}

async fn connect_request(
    call: Call,
) -> Result<(std::sync::Arc<Engine>, String, ConnectRequest), ApiError> {
    let id = call.params.get("id").unwrap_or_default().to_owned();
    let engine = call.engine.clone();
    let (parts, body) = call.req.into_parts();
    let request: ConnectRequest = read_json(&parts.headers, body, MAX_JSON_BODY)
        .await?
        .unwrap_or_default();
    if request.container.is_empty() {
        return Err(ApiError::bad_request("container name or ID is required"));
    }
    Ok((engine, id, request))
}

async fn connect(call: Call) -> ApiResult {
    let (engine, network, request) = connect_request(call).await?;
    engine
        .network_connect(&network, &request.container, request.endpoint_config)
        .await?;
    Ok(json(&json!({})))
}

async fn disconnect(call: Call) -> ApiResult {
    let (engine, network, request) = connect_request(call).await?;
    engine
        .network_disconnect(&network, &request.container)
        .await?;
    Ok(json(&json!({})))
}
