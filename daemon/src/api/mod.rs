//! The HTTP side of berthd: Docker's wire types and thin routes that parse a
//! request, call the [`Engine`], and render the answer.
//!
//! Every route is served both as `/path` and `/vX.Y/path`. The version layer
//! refuses API versions below [`MIN_API_VERSION`] with moby's 400 and serves
//! newer ones as [`API_VERSION`] (moby refuses them; accepting lets a client
//! pinned with `DOCKER_API_VERSION=1.51` work). Every response carries the
//! `Api-Version`, `Ostype`, `Docker-Experimental` and `Server` headers.
//!
//! Handlers get a [`Call`] that owns the whole `Request`, so a handler that
//! needs a hijacked connection (attach, exec start) can take
//! `hyper::upgrade::on(&mut call.req)`, answer `101 Switching Protocols`
//! (or moby's `200` + `Content-Type: application/vnd.docker.raw-stream`)
//! and spawn a task that drives the upgraded stream; the server enables
//! upgrades on every connection.

mod archive;
mod body;
mod build;
mod containers;
pub(crate) mod containers_types;
mod error;
mod images;
mod networks;
mod query;
mod registry;
mod response;
mod router;
mod system;
mod types;
mod volumes;

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;

pub(crate) use error::{ApiError, ApiResult};
pub(crate) use query::Query;
pub(crate) use response::Body;
pub(crate) use router::{Params, Router};

use crate::engine::Engine;
use crate::log;

/// The API version berthd speaks (see docs: the 28.x CLI downgrades to it).
pub(crate) const API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 47,
};
/// The oldest API version accepted on a versioned path.
pub(crate) const MIN_API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 24,
};
/// The Docker Engine release whose API berthd follows.
pub(crate) const ENGINE_VERSION: &str = "28.5.2-compat";
/// The `Server` header of every response (informational for clients).
const SERVER_HEADER: &str = "Docker/28.5.2-compat (linux)";

/// A Docker API version like `1.47`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ApiVersion {
    pub(crate) major: u32,
    pub(crate) minor: u32,
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl ApiVersion {
    /// Moby's lenient comparison: missing or unparsable components count as 0.
    fn parse_lenient(text: &str) -> ApiVersion {
        let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        ApiVersion {
            major: parts.next().unwrap_or(0),
            minor: parts.next().unwrap_or(0),
        }
    }
}

/// One request on its way to a handler.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) engine: Arc<Engine>,
    pub(crate) req: Request<Incoming>,
    #[allow(dead_code)] // used by container and image routes
    pub(crate) params: Params,
    pub(crate) query: Query,
    /// The version this request is served with (at most [`API_VERSION`]).
    #[allow(dead_code)] // for the few version-dependent behaviours (wait, attach)
    pub(crate) version: ApiVersion,
}

/// Splits `/v1.47/info` into `Some("1.47")` and `/info`; unversioned paths
/// come back whole. Moby's matcher is `/v{version:[0-9.]+}`.
fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let version = &rest[..end];
        if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return (Some(version), &rest[end..]);
        }
    }
    (None, path)
}

fn negotiate(version: Option<&str>) -> Result<ApiVersion, ApiError> {
    let Some(text) = version else {
        return Ok(API_VERSION);
    };
    let asked = ApiVersion::parse_lenient(text);
    if asked < MIN_API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {text} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok(asked.min(API_VERSION))
}

/// The router plus the engine: what each connection serves.
#[derive(Debug)]
pub(crate) struct App {
    engine: Arc<Engine>,
    router: Router,
}

impl App {
    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub(crate) fn new(engine: Arc<Engine>) -> App {
        let mut router = Router::default();
        system::routes(&mut router);
        images::routes(&mut router);
        registry::routes(&mut router);
        containers::routes(&mut router);
        volumes::routes(&mut router);
        networks::routes(&mut router);
        archive::routes(&mut router);
        build::routes(&mut router);
        App { engine, router }
    }

    #[cfg(test)]
    pub(crate) fn router_mut(&mut self) -> &mut Router {
        &mut self.router
    }

    /// Answers one request. Never fails and never panics the daemon: a
    /// panicking handler becomes a 500 (in builds that unwind).
    pub(crate) async fn dispatch(&self, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let mut response = match self.route(req).await {
            Ok(response) => response,
            Err(err) => {
                if err.status.is_server_error() {
                    log::error!("{method} {path}: {}", err.message);
                }
                err.into_response()
            }
        };
        set_common_headers(&mut response);
        log::debug!(
            "{method} {path} -> {} in {:?}",
            response.status().as_u16(),
            started.elapsed()
        );
        response
    }

    async fn route(&self, req: Request<Incoming>) -> ApiResult {
        let (version, rest) = split_version(req.uri().path());
        let version = negotiate(version)?;
        let (handler, params) = self
            .router
            .find(req.method(), rest)
            .ok_or_else(ApiError::page_not_found)?;
        let call = Call {
            engine: self.engine.clone(),
            query: Query::parse(req.uri().query()),
            req,
            params,
            version,
        };
        match AssertUnwindSafe(handler(call)).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(ApiError::internal(format!(
                    "internal error: request handler panicked: {what}"
                )))
            }
        }
    }
}

fn set_common_headers(response: &mut Response<Body>) {
    let headers = response.headers_mut();
    let api_version = HeaderValue::from_str(&API_VERSION.to_string());
    if let Ok(value) = api_version {
        headers.insert("Api-Version", value);
    }
    headers.insert("Ostype", HeaderValue::from_static("linux"));
    headers.insert("Docker-Experimental", HeaderValue::from_static("false"));
    headers.insert(
        http::header::SERVER,
        HeaderValue::from_static(SERVER_HEADER),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_split_from_paths() {
        assert_eq!(split_version("/v1.47/info"), (Some("1.47"), "/info"));
        assert_eq!(split_version("/info"), (None, "/info"));
        assert_eq!(split_version("/v1.47"), (Some("1.47"), ""));
        assert_eq!(split_version("/volumes/x"), (None, "/volumes/x"));
        assert_eq!(split_version("/v1x/info"), (None, "/v1x/info"));
    }

    #[test]
    fn too_old_is_refused_with_mobys_message_and_newer_is_served_as_ours() {
        let err = negotiate(Some("1.23")).unwrap_err();
        assert_eq!(err.status, http::StatusCode::BAD_REQUEST);
        assert_eq!(
            err.message,
            "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
        );
        assert_eq!(negotiate(Some("1.24")).unwrap(), MIN_API_VERSION);
        assert_eq!(negotiate(Some("1.51")).unwrap(), API_VERSION);
        assert_eq!(
            negotiate(Some("1.40")).unwrap(),
            ApiVersion {
                major: 1,
                minor: 40
            }
        );
        assert_eq!(negotiate(None).unwrap(), API_VERSION);
        assert_eq!(SERVER_HEADER, format!("Docker/{ENGINE_VERSION} (linux)"));
    }
}
