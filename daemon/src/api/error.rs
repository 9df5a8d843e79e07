//! API errors: an HTTP status plus Docker's `{"message": "..."}` body.

use http::StatusCode;

use super::response::{Body, json_with_status};
use crate::engine::{EngineError, ErrorKind};

/// A failed request as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

pub(crate) type ApiResult = Result<http::Response<Body>, ApiError>;

#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// Moby's answer to an unknown route and to a known route with the wrong method.
    pub(crate) fn page_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "page not found")
    }

    pub(crate) fn into_response(self) -> http::Response<Body> {
        json_with_status(
            self.status,
            &ErrorBody {
                message: &self.message,
            },
        )
    }
}

/// The single place an error kind becomes an HTTP status (statuses the
/// docker CLI and docker-py map to their error classes).
pub(crate) fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> ApiError {
        ApiError::new(status_for(err.kind()), err.to_string())
    }
}

impl From<crate::engine::filters::FilterError> for ApiError {
    fn from(err: crate::engine::filters::FilterError) -> ApiError {
        EngineError::from(err).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn errors_render_as_docker_json_with_exact_content_type() {
        let response = ApiError::page_not_found().into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], br#"{"message":"page not found"}"#);
    }

    #[test]
    fn engine_errors_map_to_statuses_by_kind() {
        let err = EngineError::SinceAfterUntil {
            since: "2".into(),
            until: "1".into(),
        };
        let api = ApiError::from(err);
        assert_eq!(api.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            api.message,
            "`since` time (2) cannot be after `until` time (1)"
        );
        assert_eq!(status_for(ErrorKind::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status_for(ErrorKind::Conflict), StatusCode::CONFLICT);
        assert_eq!(
            status_for(berth_core::ErrorKind::Integrity.into()),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
