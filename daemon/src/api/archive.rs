//! Container file routes: `docker cp` (`HEAD`/`GET`/`PUT
//! /containers/{id}/archive`), `export`, `diff` (`changes`) and `commit`.

use std::convert::Infallible;

use base64::Engine as _;
use futures_util::StreamExt;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::json;

use super::body::{MAX_JSON_BODY, read_json};
use super::containers_types::ContainerConfig;
use super::error::status_for;
use super::images::body_channel;
use super::response::{empty_body, json, json_with_status};
use super::{ApiError, ApiResult, Call, Router};
use crate::engine::containers::archive::{ExtractOptions, FsError, PathStat, TarStream};
use crate::engine::images::CommitRequest;

pub(crate) fn routes(router: &mut Router) {
    router
        .add(Method::HEAD, "/containers/{id}/archive", stat)
        .get("/containers/{id}/archive", get_archive)
        .add(Method::PUT, "/containers/{id}/archive", put_archive)
        .get("/containers/{id}/export", export)
        .get("/containers/{id}/changes", changes)
        .add(Method::POST, "/commit", commit);
}

impl From<FsError> for ApiError {
    fn from(err: FsError) -> ApiError {
        ApiError::new(status_for(err.kind()), err.to_string())
    }
}

fn id(call: &Call) -> String {
    call.params.get("id").unwrap_or_default().to_owned()
}

fn path(call: &Call) -> Result<String, ApiError> {
    match call.query.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_owned()),
        _ => Err(ApiError::bad_request("path cannot be empty")),
    }
}

fn stat_header(stat: &PathStat) -> Result<HeaderValue, ApiError> {
    let json = serde_json::to_vec(stat).map_err(|e| ApiError::internal(e.to_string()))?;
    HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(json))
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn tar_response<T>(stream: TarStream<T>) -> Response<super::Body> {
    let chunks = futures_util::stream::unfold(stream.body, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    })
    .map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
    let mut response = Response::new(StreamBody::new(chunks).boxed_unsync());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    response
}

/// `HEAD /containers/{id}/archive?path=`: the stat header only.
async fn stat(call: Call) -> ApiResult {
    let stat = call
        .engine
        .container_stat_path(&id(&call), &path(&call)?)
        .await?;
    let mut response = Response::new(empty_body());
    response
        .headers_mut()
        .insert("X-Docker-Container-Path-Stat", stat_header(&stat)?);
    Ok(response)
}

/// `GET /containers/{id}/archive?path=`: the stat header and the tar.
async fn get_archive(call: Call) -> ApiResult {
    let stream = call
        .engine
        .container_archive(&id(&call), &path(&call)?)
        .await?;
    let header = stat_header(&stream.head)?;
    let mut response = tar_response(stream);
    response
        .headers_mut()
        .insert("X-Docker-Container-Path-Stat", header);
    Ok(response)
}

/// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`.
async fn put_archive(call: Call) -> ApiResult {
    let reference = id(&call);
    let path = path(&call)?;
    let options = ExtractOptions {
        no_overwrite_dir_non_dir: call.query.bool("noOverwriteDirNonDir"),
        copy_uid_gid: call.query.bool("copyUIDGID"),
    };
    let engine = call.engine.clone();
    let body = body_channel(call.req.into_body());
    engine
        .container_extract(&reference, &path, options, body)
        .await?;
    Ok(Response::new(empty_body()))
}

/// `GET /containers/{id}/export`.
async fn export(call: Call) -> ApiResult {
    let stream = call.engine.container_export(&id(&call)).await?;
    Ok(tar_response(stream))
}

/// `GET /containers/{id}/changes`.
async fn changes(call: Call) -> ApiResult {
    Ok(json(&call.engine.container_changes(&id(&call)).await?))
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&changes=&pause=`,
/// with an optional container config in the body (the CLI sends none).
async fn commit(call: Call) -> ApiResult {
    let container = call.query.get("container").unwrap_or_default().to_owned();
    if container.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "No such container: ".to_owned(),
        ));
    }
    let request = CommitRequest {
        repo: call.query.get("repo").unwrap_or_default().to_owned(),
        tag: call.query.get("tag").unwrap_or_default().to_owned(),
        comment: call.query.get("comment").unwrap_or_default().to_owned(),
        author: call.query.get("author").unwrap_or_default().to_owned(),
        changes: call.query.get_all("changes").map(str::to_owned).collect(),
        config: None,
    };
    let pause = call.query.get("pause").is_none() || call.query.bool("pause");
    let engine = call.engine.clone();
    let (parts, body) = call.req.into_parts();
    // `null` (a client's nil config) is no config.
    let config: Option<Option<ContainerConfig>> =
        read_json(&parts.headers, body, MAX_JSON_BODY).await?;
    let request = CommitRequest {
        config: config.flatten(),
        ..request
    };
    let id = engine.container_commit(&container, request, pause).await?;
    Ok(json_with_status(StatusCode::CREATED, &json!({ "Id": id })))
}
