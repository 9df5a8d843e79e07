//! Registry authentication: the `WWW-Authenticate` challenge parser,
//! credentials (and Docker's `config.json` loader), Basic auth and the
//! Bearer token flow, with tokens cached per host and scope until they
//! expire.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use http::{Method, StatusCode};

use super::RegistryError;
use super::transport::{Body, Transport, query_escape, read_body};

/// A username and password for one registry host.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or identity token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    // The password must never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The `Authorization: Basic ...` header value.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", BASE64.encode(raw))
    }
}

/// Reads the `auths` section of a Docker `config.json`: a map from registry
/// host to credentials, decoded from the base64 `auth` (`user:password`)
/// entries. Entries without `auth` (credential helpers) are skipped.
pub fn load_docker_config(path: &Path) -> std::io::Result<HashMap<String, Credentials>> {
    let text = std::fs::read(path)?;
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    let mut out = HashMap::new();
    let Some(auths) = value.get("auths").and_then(|a| a.as_object()) else {
        return Ok(out);
    };
    for (server, entry) in auths {
        let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) else {
            continue;
        };
        let Ok(decoded) = BASE64.decode(auth.trim()) else {
            continue;
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            continue;
        };
        let Some((user, pass)) = decoded.split_once(':') else {
            continue;
        };
        out.insert(normalize_server(server), Credentials::new(user, pass));
    }
    Ok(out)
}

/// `https://index.docker.io/v1/` -> `docker.io`; `http://host:5000/` -> `host:5000`.
fn normalize_server(server: &str) -> String {
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        other => other.to_owned(),
    }
}

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lower-cased (`basic`, `bearer`).
    pub scheme: String,
    /// The auth-params, keys lower-cased.
    pub params: HashMap<String, String>,
}

impl Challenge {
    /// A parameter by its (lower-case) name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parses a `WWW-Authenticate` header value into its challenges (RFC 7235:
/// `scheme k=v, k="quoted, with \"escapes\"", scheme2 ...`).
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let b = header.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && !matches!(b[*i], b' ' | b'\t' | b',' | b'=') {
            *i += 1;
        }
        header[start..*i].to_owned()
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let word = token(&mut i);
        // Is this word a param name (followed by '=') or a new scheme?
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    // Copy whole UTF-8 characters.
                    let ch = header[i..].chars().next().unwrap_or('\u{fffd}');
                    v.push(ch);
                    i += ch.len_utf8();
                }
                i += 1; // closing quote
                v
            } else {
                let start = i;
                while i < b.len() && b[i] != b',' && b[i] != b' ' && b[i] != b'\t' {
                    i += 1;
                }
                header[start..i].to_owned()
            };
            if let Some(last) = out.last_mut() {
                last.params.insert(word.to_ascii_lowercase(), value);
            }
        } else if !word.is_empty() {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: HashMap::new(),
            });
        } else {
            i += 1;
        }
    }
    out
}

/// Tokens live this long when the token server does not say (the
/// distribution spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Tokens are dropped this long before they expire, so a request does not
/// race the expiry.
const EXPIRY_SLACK: Duration = Duration::from_secs(5);

/// `Authorization` headers that worked, per registry host and scope.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuthCache {
    entries: Arc<Mutex<HashMap<(String, String), Cached>>>,
}

#[derive(Debug, Clone)]
struct Cached {
    header: HeaderValue,
    expires: Option<Instant>,
}

impl AuthCache {
    pub(crate) fn get(&self, host: &str, scope: &str) -> Option<HeaderValue> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let key = (host.to_owned(), scope.to_owned());
        let cached = entries.get(&key)?;
        if cached.expires.is_some_and(|t| Instant::now() >= t) {
            entries.remove(&key);
            return None;
        }
        Some(cached.header.clone())
    }

    fn put(&self, host: &str, scope: &str, header: HeaderValue, lifetime: Option<Duration>) {
        let expires = lifetime.map(|l| Instant::now() + l.saturating_sub(EXPIRY_SLACK));
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(
            (host.to_owned(), scope.to_owned()),
            Cached { header, expires },
        );
    }
}

/// Answers a 401's challenges: returns the `Authorization` header to retry
/// with and caches it for `host` + `scopes`.
pub(crate) async fn answer_challenge(
    transport: &Transport,
    cache: &AuthCache,
    host: &str,
    scopes: &[String],
    www_authenticate: Option<&str>,
    credentials: Option<&Credentials>,
) -> Result<HeaderValue, RegistryError> {
    let unauthorized = |detail: String| RegistryError::Unauthorized {
        host: host.to_owned(),
        detail,
    };
    let challenges = www_authenticate.map(parse_challenges).unwrap_or_default();
    let scope_key = scopes.join(" ");
    if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
        let realm = bearer
            .param("realm")
            .ok_or_else(|| unauthorized("bearer challenge without a realm".to_owned()))?;
        let (token, lifetime) =
            fetch_token(transport, host, realm, bearer, scopes, credentials).await?;
        let header = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| unauthorized(format!("token server {realm} sent an unusable token")))?;
        cache.put(host, &scope_key, header.clone(), Some(lifetime));
        return Ok(header);
    }
    if challenges.iter().any(|c| c.scheme == "basic") {
        let Some(credentials) = credentials else {
            return Err(unauthorized(
                "registry requires basic authentication and no credentials are configured"
                    .to_owned(),
            ));
        };
        let header = HeaderValue::from_str(&credentials.basic_header())
            .map_err(|_| unauthorized("credentials are not valid in a header".to_owned()))?;
        cache.put(host, &scope_key, header.clone(), None);
        return Ok(header);
    }
    Err(unauthorized(match www_authenticate {
        Some(h) => format!("unsupported authentication challenge {h:?}"),
        None => "401 without a WWW-Authenticate challenge".to_owned(),
    }))
}

async fn fetch_token(
    transport: &Transport,
    host: &str,
    realm: &str,
    challenge: &Challenge,
    scopes: &[String],
    credentials: Option<&Credentials>,
) -> Result<(String, Duration), RegistryError> {
    let mut url = realm.to_owned();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    if let Some(service) = challenge.param("service") {
        url.push(sep);
        url.push_str("service=");
        url.push_str(&query_escape(service));
        sep = '&';
    }
    // Our own scopes name every repository the request needs (a mount
    // needs two); the challenge's is the fallback.
    let challenge_scope = challenge.param("scope").map(str::to_owned);
    let scopes: Vec<String> = if scopes.is_empty() {
        challenge_scope.into_iter().collect()
    } else {
        scopes.to_vec()
    };
    for scope in &scopes {
        url.push(sep);
        url.push_str("scope=");
        url.push_str(&query_escape(scope));
        sep = '&';
    }
    let mut headers = HeaderMap::new();
    if let Some(value) = credentials.and_then(|c| HeaderValue::from_str(&c.basic_header()).ok()) {
        headers.insert(AUTHORIZATION, value);
    }
    let response = transport
        .send(&Method::GET, &url, &headers, &Body::Empty)
        .await?;
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(RegistryError::Unauthorized {
            host: host.to_owned(),
            detail: match credentials {
                Some(c) => format!(
                    "token server {realm} refused the credentials of {:?} ({status})",
                    c.username
                ),
                None => format!("token server {realm} refused anonymous access ({status})"),
            },
        });
    }
    if !status.is_success() {
        return Err(RegistryError::Token {
            realm: realm.to_owned(),
            detail: format!("status {status}"),
        });
    }
    let body = read_body(response, &url, 1024 * 1024).await?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| RegistryError::Token {
            realm: realm.to_owned(),
            detail: format!("response is not JSON: {e}"),
        })?;
    let token = value
        .get("token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .or_else(|| value.get("access_token").and_then(|t| t.as_str()))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RegistryError::Token {
            realm: realm.to_owned(),
            detail: "response has neither token nor access_token".to_owned(),
        })?;
    let lifetime = value
        .get("expires_in")
        .and_then(|e| e.as_u64())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME);
    Ok((token.to_owned(), lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_expires_entries() {
        let cache = AuthCache::default();
        let h = HeaderValue::from_static("Bearer x");
        cache.put("h", "s", h.clone(), Some(Duration::from_secs(1)));
        assert_eq!(
            cache.get("h", "s"),
            None,
            "lifetime below the slack is already expired"
        );
        cache.put("h", "s", h.clone(), Some(Duration::from_secs(600)));
        assert_eq!(cache.get("h", "s"), Some(h.clone()));
        assert_eq!(cache.get("h", "other"), None);
    }

    #[test]
    fn parses_bearer_with_quoted_commas() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.example/token"));
        assert_eq!(c[0].param("service"), Some("registry.example"));
        assert_eq!(c[0].param("scope"), Some("repository:a/b:pull,push"));
    }

    #[test]
    fn parses_several_challenges_and_escapes() {
        let c = parse_challenges(
            r#"Basic realm="a \"quoted\" realm", Bearer realm=https://t/x, service = svc"#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some(r#"a "quoted" realm"#));
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("realm"), Some("https://t/x"));
        assert_eq!(c[1].param("service"), Some("svc"));
    }

    #[test]
    fn docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = BASE64.encode("me:s3:cret");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"localhost:5000":{{}}}}}}"#
            ),
        )
        .unwrap();
        let creds = load_docker_config(&path).unwrap();
        assert_eq!(creds.len(), 1);
        assert_eq!(creds["docker.io"], Credentials::new("me", "s3:cret"));
    }
}
