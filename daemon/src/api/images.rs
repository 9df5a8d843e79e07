//! Image routes: list, inspect, history, tag, remove, prune, save (`get`),
//! load, and `create` (import from the request body; pull is in `registry`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::error::status_for;
use super::response::{empty_body, json, json_lines};
use super::{ApiError, ApiResult, ApiVersion, Call, Router};
use crate::engine::disk_usage::ImageUsage;
use crate::engine::images::pipe::PIPE_DEPTH;
use crate::engine::images::{
    DeleteItem, HistoryItem, ImageConfig, ImageDetails, ImageError, ImportRequest,
};

pub(crate) fn routes(router: &mut Router) {
    // Fixed paths first: `{name:.*}` would match them too.
    router
        .get("/images/json", list)
        .add(Method::POST, "/images/create", create)
        .add(Method::POST, "/images/load", load)
        .add(Method::POST, "/images/prune", prune)
        .get("/images/get", save_many)
        .get("/images/{name:.*}/json", inspect)
        .get("/images/{name:.*}/history", history)
        .get("/images/{name:.*}/get", save_one)
        .add(Method::POST, "/images/{name:.*}/tag", tag)
        .add(
            Method::POST,
            "/images/{name:.*}/push",
            super::registry::push,
        )
        .add(Method::DELETE, "/images/{name:.*}", remove);
}

impl From<ImageError> for ApiError {
    fn from(err: ImageError) -> ApiError {
        ApiError::new(status_for(err.kind()), err.to_string())
    }
}

/// Moby's first version without `<none>` placeholders and `VirtualSize`.
const NO_PLACEHOLDERS: ApiVersion = ApiVersion {
    major: 1,
    minor: 43,
};
const NO_VIRTUAL_SIZE: ApiVersion = ApiVersion {
    major: 1,
    minor: 44,
};

fn name(call: &Call) -> String {
    call.params.get("name").unwrap_or_default().to_owned()
}

/// `ImageSummary`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ImageSummary {
    id: String,
    parent_id: String,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    created: i64,
    size: u64,
    shared_size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    virtual_size: Option<u64>,
    labels: Option<BTreeMap<String, String>>,
    containers: i64,
}

fn summary(details: &ImageDetails, version: ApiVersion) -> ImageSummary {
    let mut repo_tags = details.repo_tags();
    let mut repo_digests = details.repo_digests();
    if version < NO_PLACEHOLDERS && repo_tags.is_empty() && repo_digests.is_empty() {
        repo_tags.push("<none>:<none>".to_owned());
        repo_digests.push("<none>@<none>".to_owned());
    }
    let labels = details.config.labels();
    ImageSummary {
        id: details.id(),
        parent_id: String::new(),
        repo_tags,
        repo_digests,
        created: details.created_unix(),
        size: details.image.size,
        shared_size: -1,
        virtual_size: (version < NO_VIRTUAL_SIZE).then_some(details.image.size),
        labels: (!labels.is_empty()).then_some(labels),
        containers: -1,
    }
}

/// One image of `GET /system/df`: a summary with its shared size and
/// containers counted.
pub(super) fn usage_summary(usage: &ImageUsage, version: ApiVersion) -> ImageSummary {
    ImageSummary {
        shared_size: usage.shared_size as i64,
        containers: usage.containers as i64,
        ..summary(&usage.details, version)
    }
}

/// `GET /images/json`.
async fn list(call: Call) -> ApiResult {
    let filters = call.query.filters()?;
    let images = call.engine.image_list(filters).await?;
    let out: Vec<ImageSummary> = images.iter().map(|d| summary(d, call.version)).collect();
    Ok(json(&out))
}

/// The container config of an image as `docker image inspect` shows it:
/// the stored fields plus the defaults moby's `container.Config` prints.
fn container_config(config: &ImageConfig) -> Value {
    let mut map = config.config.clone().unwrap_or_default();
    let defaults = [
        ("Hostname", json!("")),
        ("Domainname", json!("")),
        ("User", json!("")),
        ("AttachStdin", json!(false)),
        ("AttachStdout", json!(false)),
        ("AttachStderr", json!(false)),
        ("Tty", json!(false)),
        ("OpenStdin", json!(false)),
        ("StdinOnce", json!(false)),
        ("Env", Value::Null),
        ("Cmd", Value::Null),
        ("Image", json!("")),
        ("Volumes", Value::Null),
        ("WorkingDir", json!("")),
        ("Entrypoint", Value::Null),
        ("OnBuild", Value::Null),
        ("Labels", Value::Null),
    ];
    for (key, value) in defaults {
        map.entry(key).or_insert(value);
    }
    Value::Object(map)
}

fn inspect_json(details: &ImageDetails, version: ApiVersion) -> Value {
    let config = &details.config;
    let comment = match config.comment.as_str() {
        "" => config
            .history
            .last()
            .map(|h| h.comment.clone())
            .unwrap_or_default(),
        comment => comment.to_owned(),
    };
    let mut out = json!({
        "Id": details.id(),
        "RepoTags": details.repo_tags(),
        "RepoDigests": details.repo_digests(),
        "Parent": "",
        "Comment": comment,
        "Created": details.image.created.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned()),
        "DockerVersion": config.docker_version,
        "Author": config.author,
        "Config": container_config(config),
        "Architecture": details.image.architecture,
        "Os": details.image.os,
        "Size": details.image.size,
        "GraphDriver": {"Name": "overlay2", "Data": {}},
        "RootFS": {
            "Type": "layers",
            "Layers": details.image.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
        },
        "Metadata": {
            "LastTagTime": details.last_tag_time.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned()),
        },
    });
    if let Some(variant) = &config.variant {
        out["Variant"] = json!(variant);
    }
    if version < NO_VIRTUAL_SIZE {
        out["VirtualSize"] = json!(details.image.size);
    }
    out
}

/// `GET /images/{name}/json`.
async fn inspect(call: Call) -> ApiResult {
    let details = call.engine.image_inspect(&name(&call)).await?;
    Ok(json(&inspect_json(&details, call.version)))
}

/// `HistoryResponseItem`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct HistoryResponseItem {
    id: String,
    created: i64,
    created_by: String,
    tags: Option<Vec<String>>,
    size: u64,
    comment: String,
}

impl From<HistoryItem> for HistoryResponseItem {
    fn from(item: HistoryItem) -> Self {
        HistoryResponseItem {
            id: item.id,
            created: item.created,
            created_by: item.created_by,
            tags: (!item.tags.is_empty()).then_some(item.tags),
            size: item.size,
            comment: item.comment,
        }
    }
}

/// `GET /images/{name}/history`.
async fn history(call: Call) -> ApiResult {
    let items = call.engine.image_history(&name(&call)).await?;
    let out: Vec<HistoryResponseItem> = items.into_iter().map(Into::into).collect();
    Ok(json(&out))
}

/// `POST /images/{name}/tag?repo=&tag=`: 201 with no body.
async fn tag(call: Call) -> ApiResult {
    let repo = call.query.get("repo").unwrap_or_default();
    let tag = call.query.get("tag").unwrap_or_default();
    call.engine.image_tag(&name(&call), repo, tag).await?;
    let mut response = Response::new(empty_body());
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// One entry of `ImageDeleteResponseItem`.
#[derive(Debug, Serialize)]
enum DeleteResponseItem {
    Untagged(String),
    Deleted(String),
}

fn delete_items(items: Vec<DeleteItem>) -> Vec<DeleteResponseItem> {
    items
        .into_iter()
        .map(|item| match item {
            DeleteItem::Untagged(r) => DeleteResponseItem::Untagged(r),
            DeleteItem::Deleted(id) => DeleteResponseItem::Deleted(id),
        })
        .collect()
}

/// `DELETE /images/{name}?force=&noprune=`. `noprune` is accepted and
/// ignored: images have no parent chain here, and layer content is shared
/// by reference, freed only when no image holds it.
async fn remove(call: Call) -> ApiResult {
    let force = call.query.bool("force");
    let items = call.engine.image_delete(&name(&call), force).await?;
    Ok(json(&delete_items(items)))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PruneResponse {
    images_deleted: Option<Vec<DeleteResponseItem>>,
    space_reclaimed: u64,
}

/// `POST /images/prune`.
async fn prune(call: Call) -> ApiResult {
    let filters = call.query.filters()?;
    let (items, reclaimed) = call.engine.image_prune(filters).await?;
    Ok(json(&PruneResponse {
        images_deleted: (!items.is_empty()).then(|| delete_items(items)),
        space_reclaimed: reclaimed,
    }))
}

async fn save(call: &Call, names: Vec<String>) -> ApiResult {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given to save"));
    }
    let saved = call.engine.image_save(names).await?;
    let first = futures_util::stream::iter((!saved.first.is_empty()).then_some(saved.first));
    let rest = futures_util::stream::unfold(saved.rest, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let frames = first
        .chain(rest)
        .map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
    let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(response)
}

/// `GET /images/get?names=a&names=b` (`docker save`).
async fn save_many(call: Call) -> ApiResult {
    let names: Vec<String> = call.query.get_all("names").map(str::to_owned).collect();
    save(&call, names).await
}

/// `GET /images/{name}/get`.
async fn save_one(call: Call) -> ApiResult {
    let names = vec![name(&call)];
    save(&call, names).await
}

/// How much of a request body is read and dropped after the reader stopped
/// early (an error): enough that clients sending a normal image see the
/// error response instead of a broken pipe, bounded against abuse.
const DRAIN_LIMIT: u64 = 1 << 30;

/// Feeds a request body into a bounded channel for a blocking reader.
pub(super) fn body_channel(mut body: Incoming) -> mpsc::Receiver<io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(PIPE_DEPTH);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tx.closed() => break,
                frame = body.frame() => match frame {
                    None => return,
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data()
                            && tx.send(Ok(data)).await.is_err()
                        {
                            break;
                        }
                    }
                    Some(Err(err)) => {
                        let _ = tx.send(Err(io::Error::other(err))).await;
                        return;
                    }
                },
            }
        }
        let mut drained = 0u64;
        while drained < DRAIN_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => {
                    drained += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                _ => return,
            }
        }
    });
    rx
}

/// A JSON message of load/import progress streams.
#[derive(Debug, Serialize)]
struct ProgressMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<String>,
}

/// Streams `messages` as a chunked JSON-lines response (docker-py decodes
/// chunked bodies message by message).
fn progress(messages: Vec<ProgressMessage>) -> ApiResult {
    let (tx, response) = json_lines::<ProgressMessage>(PIPE_DEPTH);
    tokio::spawn(async move {
        for message in messages {
            if tx.send(message).await.is_err() {
                return;
            }
        }
    });
    Ok(response)
}

/// `POST /images/load?quiet=` (`docker load`): the body is read while the
/// archive is stored; the answer names what was loaded, as Docker does.
async fn load(call: Call) -> ApiResult {
    let engine = call.engine.clone();
    let body = body_channel(call.req.into_body());
    let loaded = engine.image_load(body).await?;
    let mut messages = Vec::new();
    for image in &loaded {
        if image.references.is_empty() {
            messages.push(format!("Loaded image ID: {}\n", image.image.id()));
        }
        for reference in &image.references {
            messages.push(format!("Loaded image: {}\n", reference.familiar()));
        }
    }
    progress(
        messages
            .into_iter()
            .map(|text| ProgressMessage {
                status: None,
                stream: Some(text),
            })
            .collect(),
    )
}

/// `POST /images/create`: `fromImage` pulls (`docker pull`); `fromSrc=-`
/// imports the body as a root file system (`docker import`).
async fn create(call: Call) -> ApiResult {
    if let Some(image) = call.query.get("fromImage").filter(|s| !s.is_empty()) {
        let image = image.to_owned();
        return super::registry::pull(call, &image).await;
    }
    match call.query.get("fromSrc").unwrap_or_default() {
        "-" => {}
        "" => {
            return Err(ApiError::bad_request(
                "fromImage or fromSrc is required to create an image",
            ));
        }
        url => return Err(ImageError::ImportFromUrl(url.to_owned()).into()),
    }
    let request = ImportRequest {
        repo: call.query.get("repo").unwrap_or_default().to_owned(),
        tag: call.query.get("tag").unwrap_or_default().to_owned(),
        changes: call.query.get_all("changes").map(str::to_owned).collect(),
        message: call.query.get("message").map(str::to_owned),
    };
    let engine = call.engine.clone();
    // Channel first: on a refused request the body is still drained.
    let body = body_channel(call.req.into_body());
    let (reference, config) = engine.image_import_plan(&request)?;
    let id = engine.image_import(body, reference, config).await?;
    progress(vec![ProgressMessage {
        status: Some(id),
        stream: None,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_items_render_as_docker_does() {
        let items = delete_items(vec![
            DeleteItem::Untagged("busybox:latest".into()),
            DeleteItem::Deleted("sha256:abc".into()),
        ]);
        assert_eq!(
            serde_json::to_string(&items).unwrap(),
            r#"[{"Untagged":"busybox:latest"},{"Deleted":"sha256:abc"}]"#
        );
    }
}
