//! Registry routes: pull (`POST /images/create?fromImage=`, entered from
//! `images::create`), push and `POST /auth` (`docker login`), and the
//! JSON-lines progress messages dockerd streams for them.

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use berth_core::{Credentials, Platform, Reference};
use http::{HeaderMap, Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::body::read_json;
use super::response::{json, json_lines};
use super::{ApiError, ApiResult, Call, Router};
use crate::engine::images::{ImageError, PullLine};

pub(crate) fn routes(router: &mut Router) {
    router.add(Method::POST, "/auth", login);
}

/// Messages buffered towards a slow client.
const MESSAGES_IN_FLIGHT: usize = 64;
/// Largest auth body accepted (an `AuthConfig` is a few hundred bytes).
const MAX_AUTH_BODY: usize = 64 << 10;

/// moby's `registry.AuthConfig` as clients send it.
#[derive(Debug, Default, Deserialize)]
struct AuthConfig {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// base64 `user:password`, what `config.json` stores.
    #[serde(default)]
    auth: String,
    #[serde(default)]
    serveraddress: String,
    #[serde(default)]
    identitytoken: String,
}

impl AuthConfig {
    /// The credentials it holds; `None` for an empty (anonymous) config.
    fn credentials(&self) -> Option<Credentials> {
        if !self.identitytoken.is_empty() {
            // Docker stores identity tokens under the `<token>` user.
            return Some(Credentials::new("<token>", self.identitytoken.clone()));
        }
        if !self.username.is_empty() || !self.password.is_empty() {
            return Some(Credentials::new(
                self.username.clone(),
                self.password.clone(),
            ));
        }
        let decoded = general_purpose::STANDARD.decode(self.auth.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, pass) = decoded.split_once(':')?;
        Some(Credentials::new(user, pass))
    }
}

/// base64url with or without padding (the docker CLI pads, others do not).
const AUTH_HEADER_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The `X-Registry-Auth` header decoded. Like moby, an undecodable header
/// is ignored (the request goes on anonymously); `None` when absent.
fn registry_auth_header(headers: &HeaderMap) -> Option<AuthConfig> {
    let value = headers.get("x-registry-auth")?.to_str().ok()?.trim();
    if value.is_empty() {
        return Some(AuthConfig::default());
    }
    let decoded = AUTH_HEADER_BASE64.decode(value).ok();
    Some(
        decoded
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default(),
    )
}

/// `X-Registry-Config` (what `docker build` sends): base64url JSON of
/// registry address -> `AuthConfig`; the entries that hold credentials.
pub(super) fn registry_config_header(
    headers: &HeaderMap,
) -> std::collections::BTreeMap<String, Credentials> {
    let Some(value) = headers
        .get("x-registry-config")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
    else {
        return Default::default();
    };
    let configs: std::collections::BTreeMap<String, AuthConfig> = AUTH_HEADER_BASE64
        .decode(value)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    configs
        .into_iter()
        .filter_map(|(address, config)| Some((address, config.credentials()?)))
        .collect()
}

/// `Pulling fs layer`, `Downloading` with `progressDetail` and the bar...:
/// moby's `JSONMessage` fields in its order, empty ones left out.
#[derive(Debug, Default, Serialize)]
struct JsonMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    progress_detail: Option<ProgressDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    error_detail: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aux: Option<Value>,
}

#[derive(Debug, Default, Serialize)]
struct ProgressDetail {
    #[serde(skip_serializing_if = "is_zero")]
    current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    total: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn message(line: PullLine) -> JsonMessage {
    match line {
        PullLine::Status { id, status } => JsonMessage {
            status: Some(status),
            id,
            ..JsonMessage::default()
        },
        PullLine::Layer {
            id,
            status,
            progress,
        } => {
            let (current, total) = progress.unwrap_or((0, 0));
            let bar = progress_bar(current, total);
            JsonMessage {
                status: Some(status),
                progress_detail: Some(ProgressDetail { current, total }),
                progress: (!bar.is_empty()).then_some(bar),
                id: Some(id),
                ..JsonMessage::default()
            }
        }
        PullLine::PushResult { tag, digest, size } => JsonMessage {
            progress_detail: Some(ProgressDetail::default()),
            aux: Some(json!({"Tag": tag, "Digest": digest, "Size": size})),
            ..JsonMessage::default()
        },
        PullLine::Error(text) => JsonMessage {
            error_detail: Some(json!({ "message": text })),
            error: Some(text),
            ..JsonMessage::default()
        },
    }
}

/// moby's `JSONProgress.String()` for a 200-column width (what dockerd
/// computes server-side): `[=====>     ]  1.05MB/2.15MB`.
fn progress_bar(current: u64, total: u64) -> String {
    if total == 0 {
        return match current {
            0 => String::new(),
            c => format!("{:>8}", human_size(c)),
        };
    }
    let percentage = ((current as f64 / total as f64 * 100.0) as usize / 2).min(50);
    let bar = format!(
        "[{}>{}] ",
        "=".repeat(percentage),
        " ".repeat(50 - percentage)
    );
    let numbers = if current > total {
        format!("{:>8}", human_size(current))
    } else {
        format!("{:>8}/{}", human_size(current), human_size(total))
    };
    bar + &numbers
}

/// go-units' `HumanSize`: decimal units, four significant digits (`%.4g`).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", format_g4(size), UNITS[unit])
}

/// Go's `%.4g` for the values `human_size` produces (0 or 1 <= x < 1000).
fn format_g4(x: f64) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let exponent = x.abs().log10().floor() as i32;
    let scale = 10f64.powi(3 - exponent);
    let rounded = (x * scale).round() / scale;
    let exponent = rounded.abs().log10().floor() as i32;
    let decimals = (3 - exponent).max(0) as usize;
    let text = format!("{rounded:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// Streams progress lines as dockerd's JSON messages.
fn stream(mut lines: mpsc::Receiver<PullLine>) -> ApiResult {
    let (tx, response) = json_lines::<JsonMessage>(MESSAGES_IN_FLIGHT);
    tokio::spawn(async move {
        while let Some(line) = lines.recv().await {
            if tx.send(message(line)).await.is_err() {
                return; // client gone; dropping `lines` tells the producer
            }
        }
    });
    Ok(response)
}

/// The reference `fromImage` + `tag` name, moby's way: a `tag` that is a
/// digest pins it.
fn pull_reference(image: &str, tag: &str) -> Result<Reference, ApiError> {
    let invalid = |e: berth_core::ReferenceError| ApiError::from(ImageError::InvalidReference(e));
    let parsed = Reference::parse(image).map_err(invalid)?;
    let text = match tag {
        "" => return Ok(parsed),
        t if t.contains(':') => format!("{}@{t}", parsed.name()),
        t => format!("{}:{t}", parsed.name()),
    };
    Reference::parse(&text).map_err(invalid)
}

/// `POST /images/create?fromImage=&tag=&platform=` (`docker pull`).
pub(super) async fn pull(call: Call, image: &str) -> ApiResult {
    let tag = call.query.get("tag").unwrap_or_default();
    let reference = pull_reference(image, tag)?;
    let platform = match call.query.get("platform").unwrap_or_default().trim() {
        "" => None,
        text => Some(Platform::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid platform {text:?}: expected os/arch[/variant]"
            ))
        })?),
    };
    let credentials = registry_auth_header(call.req.headers()).and_then(|a| a.credentials());
    let lines = call
        .engine
        .image_pull(reference, platform, credentials)
        .await?;
    stream(lines)
}

/// `POST /images/{name}/push?tag=`. Credentials come from `X-Registry-Auth`
/// or, without that header, from a JSON body (moby's old form).
pub(super) async fn push(call: Call) -> ApiResult {
    let name = call.params.get("name").unwrap_or_default().to_owned();
    let tag = call.query.get("tag").unwrap_or_default().to_owned();
    let engine = call.engine.clone();
    let auth = match registry_auth_header(call.req.headers()) {
        Some(auth) => auth,
        None => {
            let (parts, body) = call.req.into_parts();
            read_json::<AuthConfig, _>(&parts.headers, body, MAX_AUTH_BODY)
                .await
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "bad parameters and missing X-Registry-Auth: {}",
                        e.message
                    ))
                })?
                .unwrap_or_default()
        }
    };
    let lines = engine.image_push(&name, &tag, auth.credentials()).await?;
    stream(lines)
}

/// The registry host a login names: `https://host:5000/v2/` -> `host:5000`;
/// empty (or Docker Hub's index URL) -> `docker.io`.
fn login_host(server: &str) -> String {
    let trimmed = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = trimmed.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        other => other.to_owned(),
    }
}

/// `POST /auth` (`docker login`): 200 with `Login Succeeded` when the
/// registry accepts the credentials, 401 with its refusal otherwise.
async fn login(call: Call) -> ApiResult {
    let engine = call.engine.clone();
    let (parts, body) = call.req.into_parts();
    let auth: AuthConfig = read_json(&parts.headers, body, MAX_AUTH_BODY)
        .await?
        .unwrap_or_default();
    let host = login_host(&auth.serveraddress);
    let Some(credentials) = auth.credentials() else {
        return Err(ApiError::bad_request("login needs a username and password"));
    };
    match engine.registry_login(&host, credentials).await {
        Ok(()) => Ok(json(
            &json!({"Status": "Login Succeeded", "IdentityToken": ""}),
        )),
        Err(err @ ImageError::LoginFailed(_)) => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, err.to_string()))
        }
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bars_render_as_go_units_and_jsonmessage_do() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(22456), "22.46kB");
        assert_eq!(human_size(2_152_262), "2.152MB");
        assert_eq!(human_size(1_000_000), "1MB");
        assert_eq!(human_size(999_960), "1000kB");
        assert_eq!(
            progress_bar(2_152_262, 2_152_262),
            "[==================================================>]  2.152MB/2.152MB"
        );
        assert_eq!(
            progress_bar(22456, 2_152_262),
            "[>                                                  ]  22.46kB/2.152MB"
        );
        assert_eq!(progress_bar(0, 0), "");
    }

    #[test]
    fn messages_serialize_like_mobys_jsonmessage() {
        let line = PullLine::layer("9ad63333ebc9", "Pull complete");
        assert_eq!(
            serde_json::to_string(&message(line)).unwrap(),
            r#"{"status":"Pull complete","progressDetail":{},"id":"9ad63333ebc9"}"#
        );
        let line = PullLine::Status {
            id: Some("latest".into()),
            status: "Pulling from library/busybox".into(),
        };
        assert_eq!(
            serde_json::to_string(&message(line)).unwrap(),
            r#"{"status":"Pulling from library/busybox","id":"latest"}"#
        );
        assert_eq!(
            serde_json::to_string(&message(PullLine::Error("boom".into()))).unwrap(),
            r#"{"errorDetail":{"message":"boom"},"error":"boom"}"#
        );
    }

    #[test]
    fn auth_headers_decode_with_or_without_padding_and_bad_ones_are_anonymous() {
        let mut headers = HeaderMap::new();
        let json = r#"{"username":"u","password":"p","serveraddress":"h:5000"}"#;
        let encoded = base64::engine::general_purpose::URL_SAFE.encode(json);
        headers.insert("x-registry-auth", encoded.parse().unwrap());
        let creds = registry_auth_header(&headers).unwrap().credentials();
        assert_eq!(creds, Some(Credentials::new("u", "p")));
        let unpadded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        headers.insert("x-registry-auth", unpadded.parse().unwrap());
        assert!(
            registry_auth_header(&headers)
                .unwrap()
                .credentials()
                .is_some()
        );
        headers.insert("x-registry-auth", "e30=".parse().unwrap()); // {}
        assert_eq!(registry_auth_header(&headers).unwrap().credentials(), None);
        headers.insert("x-registry-auth", "!!!".parse().unwrap());
        assert_eq!(registry_auth_header(&headers).unwrap().credentials(), None);
        assert!(registry_auth_header(&HeaderMap::new()).is_none());
    }

    #[test]
    fn pull_references_take_tags_and_digests_and_login_hosts_normalize() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = pull_reference("127.0.0.1:5000/busybox", &digest).unwrap();
        assert_eq!(r.digest().unwrap().to_string(), digest);
        let r = pull_reference("busybox", "1.36").unwrap();
        assert_eq!(r.familiar(), "busybox:1.36");
        assert_eq!(pull_reference("Bad", "").unwrap_err().status, 400);
        assert_eq!(login_host("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(login_host(""), "docker.io");
        assert_eq!(login_host("https://index.docker.io/v1/"), "docker.io");
    }
}
