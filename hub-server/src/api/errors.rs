//! The one place where an API error becomes an HTTP status and a body
//! `{"error":{"code":"…","message":"…"}}`. Codes are stable and machine-readable; where the client
//! protocol has a word for the same fault (`bad_json`, `bad_room`, `empty_content`) it is reused.

use http::StatusCode;
use http::header::{ALLOW, CONNECTION, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use serde::Serialize;
use warp::reply::{Reply, Response};

use crate::error::ProtocolError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong API key: send Authorization: Bearer <key>")]
    Unauthorized,
    #[error("no such endpoint")]
    NotFound,
    #[error("this endpoint answers {allowed} only")]
    MethodNotAllowed { allowed: &'static str },
    /// Not JSON, not an object of the expected shape, an unknown field, a field of the wrong type.
    #[error("{0}")]
    BadJson(String),
    #[error("{0}")]
    BadQuery(String),
    /// A field with a value the hub refuses: `bad_room`, `empty_content`, `bad_user`, ….
    #[error("{message}")]
    BadField { code: &'static str, message: String },
    #[error("{what} is over the limit of {limit} bytes")]
    TooLarge { what: &'static str, limit: usize },
    /// The body did not all arrive in time; the connection is closed with the answer.
    #[error("the request body did not arrive within {after:?}")]
    BodyTimeout { after: std::time::Duration },
    #[error("no history is kept for this room (history_size = 0)")]
    NoHistory,
    #[error("no presence is kept for this room (its namespace sets presence = false)")]
    NoPresence,
    #[error("a request with this idempotency_key is still in progress: retry later")]
    InProgress,
    /// Redis (or the bridge) is needed and unavailable: nothing was done unless the message says so.
    #[error("{0}")]
    Unavailable(&'static str),
}

impl From<ProtocolError> for ApiError {
    fn from(err: ProtocolError) -> Self {
        ApiError::BadField {
            code: err.code(),
            message: err.to_string(),
        }
    }
}

#[derive(Serialize)]
struct Body {
    error: Detail,
}

/// What an error body says, also each refused message's answer in a batch.
#[derive(Debug, Serialize)]
pub struct Detail {
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound | ApiError::NoHistory | ApiError::NoPresence => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadJson(_) | ApiError::BadQuery(_) | ApiError::BadField { .. } => {
                StatusCode::BAD_REQUEST
            }
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::InProgress => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::BadJson(_) => "bad_json",
            ApiError::BadQuery(_) => "bad_query",
            ApiError::BadField { code, .. } => code,
            ApiError::TooLarge { .. } => "too_large",
            ApiError::BodyTimeout { .. } => "request_timeout",
            ApiError::NoHistory => "no_history",
            ApiError::NoPresence => "no_presence",
            ApiError::InProgress => "in_progress",
            ApiError::Unavailable(_) => "unavailable",
        }
    }

    pub fn bad_field(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadField {
            code,
            message: message.into(),
        }
    }

    pub fn detail(&self) -> Detail {
        Detail {
            code: self.code(),
            message: self.to_string(),
        }
    }

    pub fn into_response(self) -> Response {
        let body = Body {
            error: self.detail(),
        };
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status()).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorized => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::MethodNotAllowed { allowed } => {
                headers.insert(ALLOW, HeaderValue::from_static(allowed));
            }
            ApiError::Unavailable(_) | ApiError::InProgress => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // The rest of the body may still come: the connection cannot carry another request.
            ApiError::BodyTimeout { .. } => {
                headers.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_status_code_and_json_body() {
        let cases = [
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::NotFound, 404, "not_found"),
            (
                ApiError::MethodNotAllowed { allowed: "GET" },
                405,
                "method_not_allowed",
            ),
            (ApiError::BadJson("x".into()), 400, "bad_json"),
            (ApiError::BadQuery("x".into()), 400, "bad_query"),
            (ProtocolError::BadRoom("a b".into()).into(), 400, "bad_room"),
            (ProtocolError::EmptyContent.into(), 400, "empty_content"),
            (
                ApiError::TooLarge {
                    what: "the body",
                    limit: 1,
                },
                413,
                "too_large",
            ),
            (ApiError::NoHistory, 404, "no_history"),
            (ApiError::NoPresence, 404, "no_presence"),
            (
                ProtocolError::UnknownNamespace {
                    namespace: "x".into(),
                    room: "x:y".into(),
                }
                .into(),
                400,
                "unknown_namespace",
            ),
            (ApiError::InProgress, 409, "in_progress"),
            (
                ApiError::Unavailable("redis is unavailable"),
                503,
                "unavailable",
            ),
        ];
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api/openapi.json");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("read openapi.json"))
                .expect("openapi.json is JSON");
        let documented = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
            ["code"]["enum"];
        let documented = documented.as_array().expect("the error codes");
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
            assert_eq!(err.code(), code, "{err:?}");
            assert!(
                documented.iter().any(|c| c == code),
                "{code} is not in openapi.json"
            );
        }
    }
}
