//! Reading JSON request bodies with a size limit, without buffering more
//! than the limit, and with errors that name the problem.

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Largest JSON request body accepted (container create bodies are a few KiB).
#[allow(dead_code)] // used by container, exec and network routes
pub(crate) const MAX_JSON_BODY: usize = 16 << 20;

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "request body is larger than the {} MiB limit for JSON bodies",
            limit >> 20
        ),
    )
}

/// Decodes a JSON request body. `Ok(None)` for an empty body (Docker treats
/// that as "all defaults"). A Content-Type other than JSON is refused as moby
/// does; a missing one is accepted (clients send none on many POSTs).
#[allow(dead_code)] // used by container, exec and network routes
pub(crate) async fn read_json<T, B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
) -> Result<Option<T>, ApiError>
where
    T: DeserializeOwned,
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let text = content_type.to_str().unwrap_or("");
        let essence = text.split(';').next().unwrap_or("").trim();
        if !essence.is_empty() && !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::bad_request(format!(
                "unsupported Content-Type header ({text}): must be 'application/json'"
            )));
        }
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit));
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(too_large(limit));
        }
        Err(err) => {
            return Err(ApiError::bad_request(format!(
                "reading request body: {err}"
            )));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|err| ApiError::bad_request(format!("invalid JSON in request body: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};
    use hyper::body::Frame;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Create {
        image: String,
        tty: Option<bool>,
    }

    fn headers(content_type: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
        }
        h
    }

    #[tokio::test]
    async fn decodes_json_and_treats_empty_as_none() {
        let body = Full::new(Bytes::from_static(br#"{"Image":"busybox","Tty":true}"#));
        let got: Option<Create> =
            read_json(&headers(Some("application/json")), body, MAX_JSON_BODY)
                .await
                .unwrap();
        assert_eq!(
            got,
            Some(Create {
                image: "busybox".into(),
                tty: Some(true)
            })
        );
        let empty: Option<Create> =
            read_json(&headers(None), Full::new(Bytes::new()), MAX_JSON_BODY)
                .await
                .unwrap();
        assert_eq!(empty, None);
    }

    #[tokio::test]
    async fn malformed_json_is_a_400_naming_the_problem() {
        let body = Full::new(Bytes::from_static(br#"{"Image": 5}"#));
        let err = read_json::<Create, _>(&headers(None), body, MAX_JSON_BODY)
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(
            err.message
                .starts_with("invalid JSON in request body: invalid type: integer `5`"),
            "{}",
            err.message
        );
        let body = Full::new(Bytes::from_static(b"{\"Image\":"));
        let err = read_json::<Create, _>(&headers(None), body, MAX_JSON_BODY)
            .await
            .unwrap_err();
        assert!(err.message.contains("EOF"), "{}", err.message);
    }

    #[tokio::test]
    async fn wrong_content_type_is_refused() {
        let body = Full::new(Bytes::from_static(b"{}"));
        let err = read_json::<Create, _>(&headers(Some("text/plain")), body, MAX_JSON_BODY)
            .await
            .unwrap_err();
        assert_eq!(
            err.message,
            "unsupported Content-Type header (text/plain): must be 'application/json'"
        );
        let ok = read_json::<serde_json::Value, _>(
            &headers(Some("application/json; charset=utf-8")),
            Full::new(Bytes::from_static(b"{}")),
            MAX_JSON_BODY,
        )
        .await;
        assert!(ok.is_ok());
    }

    #[tokio::test]
    async fn declared_oversize_is_refused_without_reading() {
        let mut h = headers(None);
        h.insert(header::CONTENT_LENGTH, "17000000".parse().unwrap());
        let err = read_json::<Create, _>(&h, Full::new(Bytes::new()), MAX_JSON_BODY)
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(err.message.contains("16 MiB"), "{}", err.message);
    }

    #[tokio::test]
    async fn chunked_oversize_stops_reading_at_the_limit() {
        // An endless chunked body: the reader must give up after the limit,
        // not buffer until memory runs out.
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = pulled.clone();
        let chunks = futures_util::stream::repeat_with(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![b' '; 64 * 1024])))
        });
        let limit = 1 << 20;
        let err = read_json::<Create, _>(&headers(None), StreamBody::new(chunks), limit)
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(pulled.load(Ordering::Relaxed) <= limit / (64 * 1024) + 1);
    }
}
