//! `POST /build`: the classic builder's API (what the docker CLI without
//! buildx, and docker-py, call). The body is the context tar; the answer
//! a JSON-lines stream of `stream`, `aux` and `error` messages.

use std::collections::BTreeMap;

use http::Method;
use serde::Serialize;
use serde_json::{Value, json};

use super::images::body_channel;
use super::response::json_lines;
use super::{ApiError, ApiResult, Call, Router};
use crate::engine::build::{BuildError, BuildMessage, BuildRequest};
use crate::engine::images::pipe::PIPE_DEPTH;

pub(crate) fn routes(router: &mut Router) {
    router.add(Method::POST, "/build", build);
}

impl From<BuildError> for ApiError {
    fn from(err: BuildError) -> ApiError {
        ApiError::new(super::error::status_for(err.kind()), err.to_string())
    }
}

/// One line of the stream, as moby's `jsonmessage.JSONMessage`.
#[derive(Debug, Serialize)]
struct Line {
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aux: Option<Value>,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    error_detail: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl From<BuildMessage> for Line {
    fn from(message: BuildMessage) -> Line {
        let mut line = Line {
            stream: None,
            aux: None,
            error_detail: None,
            error: None,
        };
        match message {
            BuildMessage::Stream(text) => line.stream = Some(text),
            BuildMessage::Aux(id) => line.aux = Some(json!({"ID": id})),
            BuildMessage::Error { message, code } => {
                line.error_detail = Some(match code {
                    Some(code) => json!({"code": code, "message": message}),
                    None => json!({"message": message}),
                });
                line.error = Some(message);
            }
        }
        line
    }
}

/// A JSON object of strings from the query (`labels`), empty if absent.
fn string_map(call: &Call, key: &str) -> Result<BTreeMap<String, String>, ApiError> {
    match call.query.get(key).filter(|s| !s.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}"))),
    }
}

async fn build(call: Call) -> ApiResult {
    if let Some(remote) = call.query.get("remote").filter(|s| !s.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "remote build contexts are not supported: {remote}"
        )));
    }
    let build_args = match call.query.get("buildargs").filter(|s| !s.is_empty()) {
        None => BTreeMap::new(),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("invalid buildargs: {e}")))?,
    };
    let request = BuildRequest {
        tags: call
            .query
            .get_all("t")
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        dockerfile: call.query.get("dockerfile").unwrap_or_default().to_owned(),
        build_args,
        labels: string_map(&call, "labels")?,
        quiet: call.query.bool("q"),
        no_cache: call.query.bool("nocache"),
        pull: call.query.bool("pull"),
        target: call.query.get("target").unwrap_or_default().to_owned(),
        credentials: super::registry::registry_config_header(call.req.headers()),
    };
    let engine = call.engine.clone();
    let body = body_channel(call.req.into_body());
    let prepared = engine.build_prepare(request, body).await?;
    let (tx, response) = json_lines::<Line>(PIPE_DEPTH);
    let (messages, mut rx) = tokio::sync::mpsc::channel(PIPE_DEPTH);
    // Ends (dropping `rx`, which the build sees) once the client is gone.
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tx.closed() => break,
                message = rx.recv() => {
                    let Some(message) = message else { break };
                    if tx.send(Line::from(message)).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    tokio::spawn(engine.build_run(prepared, messages));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_as_mobys_json_messages() {
        let line = Line::from(BuildMessage::Error {
            message: "The command '/bin/sh -c exit 3' returned a non-zero code: 3".into(),
            code: Some(3),
        });
        assert_eq!(
            serde_json::to_value(&line).unwrap(),
            json!({
                "errorDetail": {"code": 3, "message": "The command '/bin/sh -c exit 3' returned a non-zero code: 3"},
                "error": "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
            })
        );
        let line = Line::from(BuildMessage::Aux("sha256:ab".into()));
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"aux":{"ID":"sha256:ab"}}"#
        );
    }
}
