//! The HTTP layer: pooled hyper clients (plain HTTP for insecure
//! registries; HTTPS with the system's roots, built on the first HTTPS
//! request, since reading and parsing the roots costs ~150 ms that a pull
//! from a loopback registry never needs), request bodies that can be
//! replayed, and bounded retries with exponential backoff.
//!
//! Only failures that another attempt can fix are retried: connection
//! errors, 5xx and 429. Any other 4xx is the caller's problem and is
//! returned at once.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HeaderMap, HeaderValue, USER_AGENT};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncReadExt as _;

use super::RegistryError;

pub(crate) type ReqBody = BoxBody<Bytes, io::Error>;

/// A request body that can be built again for each attempt.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Empty,
    Bytes(Bytes),
    /// Streamed from a file in chunks, never read whole into memory.
    File {
        path: PathBuf,
        len: u64,
    },
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Self::Empty => 0,
            Self::Bytes(b) => b.len() as u64,
            Self::File { len, .. } => *len,
        }
    }

    fn make(&self) -> ReqBody {
        match self {
            Self::Empty => Empty::new().map_err(|never| match never {}).boxed(),
            Self::Bytes(b) => Full::new(b.clone()).map_err(|never| match never {}).boxed(),
            Self::File { path, .. } => file_body(path.clone()),
        }
    }
}

const FILE_CHUNK: usize = 256 * 1024;

fn file_body(path: PathBuf) -> ReqBody {
    enum State {
        Closed(PathBuf),
        Open(tokio::fs::File),
        Done,
    }
    let stream = futures_util::stream::unfold(State::Closed(path), |state| async move {
        let mut file = match state {
            State::Done => return None,
            State::Open(file) => file,
            State::Closed(path) => match tokio::fs::File::open(&path).await {
                Ok(file) => file,
                Err(e) => return Some((Err(e), State::Done)),
            },
        };
        let mut buf = BytesMut::with_capacity(FILE_CHUNK);
        match file.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(Frame::data(buf.freeze())), State::Open(file))),
            Err(e) => Some((Err(e), State::Done)),
        }
    });
    StreamBody::new(stream).boxed()
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (at least 1).
    pub attempts: u32,
    /// Wait before the first retry; doubled for each next one.
    pub initial_backoff: Duration,
    /// Upper bound for one wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, ReqBody>;

#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: Client<HttpConnector, ReqBody>,
    /// Built by the first HTTPS request (a failure is not kept: the next
    /// request tries again).
    https: Arc<Mutex<Option<HttpsClient>>>,
    user_agent: HeaderValue,
    retry: RetryPolicy,
}

impl Transport {
    pub(crate) fn new(user_agent: &str, retry: RetryPolicy) -> Result<Self, RegistryError> {
        let http = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let user_agent =
            HeaderValue::from_str(user_agent).unwrap_or_else(|_| HeaderValue::from_static("berth"));
        Ok(Self {
            http,
            https: Arc::default(),
            user_agent,
            retry,
        })
    }

    fn https(&self) -> Result<HttpsClient, RegistryError> {
        let mut https = self.https.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = &*https {
            return Ok(client.clone());
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(RegistryError::TlsRoots)?
            .https_only()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        *https = Some(client.clone());
        Ok(client)
    }

    /// Sends one request, retrying connection errors, 5xx and 429.
    pub(crate) async fn send(
        &self,
        method: &Method,
        url: &str,
        headers: &HeaderMap,
        body: &Body,
    ) -> Result<Response<Incoming>, RegistryError> {
        let uri: Uri = url.parse().map_err(|_| RegistryError::InvalidUrl {
            url: url.to_owned(),
        })?;
        let https = match uri.scheme_str() {
            Some("https") => Some(self.https()?),
            _ => None,
        };
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = Request::builder()
                .method(method.clone())
                .uri(uri.clone())
                .body(body.make())
                .map_err(|_| RegistryError::InvalidUrl {
                    url: url.to_owned(),
                })?;
            *request.headers_mut() = headers.clone();
            request
                .headers_mut()
                .insert(USER_AGENT, self.user_agent.clone());
            if !matches!(body, Body::Empty) || *method == Method::PUT || *method == Method::POST {
                request
                    .headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            }
            let last = attempt >= attempts;
            let response = match &https {
                Some(client) => client.request(request).await,
                None => self.http.request(request).await,
            };
            match response {
                Ok(response) => {
                    let status = response.status();
                    let retryable =
                        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    if !retryable || last {
                        return Ok(response);
                    }
                }
                Err(e) if e.is_connect() && !last => {}
                Err(e) => {
                    return Err(RegistryError::Transport {
                        method: method.clone(),
                        url: url.to_owned(),
                        attempts: attempt,
                        source: Box::new(e),
                    });
                }
            }
            tokio::time::sleep(self.retry.backoff(attempt - 1)).await;
        }
    }
}

/// Reads a whole (small) response body, refusing more than `limit` bytes.
pub(crate) async fn read_body(
    response: Response<Incoming>,
    url: &str,
    limit: usize,
) -> Result<Bytes, RegistryError> {
    Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|source| RegistryError::Body {
            url: url.to_owned(),
            source,
        })
}

/// A short, printable excerpt of an error response body for messages.
pub(crate) async fn error_excerpt(response: Response<Incoming>, url: &str) -> String {
    match read_body(response, url, 64 * 1024).await {
        Ok(body) => {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            let end = text
                .char_indices()
                .nth(300)
                .map(|(i, _)| i)
                .unwrap_or(text.len());
            text[..end].to_owned()
        }
        Err(_) => String::new(),
    }
}

/// Resolves a `Location` header against the URL of the request it came
/// from: absolute URLs as they are, `/path` against the origin.
pub(crate) fn resolve_location(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    if location.starts_with('/') {
        format!("{}{location}", &base[..origin_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|i| *i >= origin_end)
            .unwrap_or(origin_end);
        format!("{}/{location}", &base[..dir_end])
    }
}

/// Percent-encodes a query parameter value.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_request() {
        let base = "http://h:5000/v2/a/blobs/uploads/";
        assert_eq!(
            resolve_location(base, "/v2/a/blobs/uploads/x?_state=1"),
            "http://h:5000/v2/a/blobs/uploads/x?_state=1"
        );
        assert_eq!(resolve_location(base, "https://s/y"), "https://s/y");
        assert_eq!(
            resolve_location("http://h/v2/a/blobs/uploads/", "x"),
            "http://h/v2/a/blobs/uploads/x"
        );
    }

    #[tokio::test]
    async fn https_client_is_built_by_the_first_https_request() {
        let once = RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        };
        let t = Transport::new("test", once).expect("transport");
        assert!(
            t.https.lock().unwrap().is_none(),
            "no TLS roots read up front"
        );
        // A closed port: the request reaches the connector, which fails to
        // connect (not to load roots or to parse the URL).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let url = format!("https://127.0.0.1:{port}/v2/");
        let err = t
            .send(&Method::GET, &url, &HeaderMap::new(), &Body::Empty)
            .await
            .expect_err("nothing listens there");
        assert!(
            matches!(err, RegistryError::Transport { attempts: 1, .. }),
            "{err:?}"
        );
        assert!(t.https.lock().unwrap().is_some(), "client kept for reuse");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        assert_eq!(p.backoff(0), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(400));
        assert_eq!(p.backoff(3), Duration::from_millis(500));
        assert_eq!(p.backoff(40), Duration::from_millis(500));
    }

    #[test]
    fn escapes_scopes() {
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
