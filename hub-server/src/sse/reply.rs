//! The SSE routes' answers: JSON errors a client can act on, and the CORS headers that let a page
//! of an allowed origin read them.

use http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

use super::origin;
use crate::state::AppState;

/// `{"error":code,"message":…}` with `status`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": code, "message": message });
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// The origin refused, as `/ws` refuses it (403).
pub fn foreign_origin(origin: Option<&str>) -> Response {
    tracing::info!(
        origin = origin.unwrap_or_default(),
        "sse refused: origin not allowed"
    );
    error(
        StatusCode::FORBIDDEN,
        "origin_not_allowed",
        "this page's origin may not use this hub",
    )
}

/// Lets the page of `headers`' origin (already checked) read `response`.
pub fn cors(mut response: Response, headers: &HeaderMap) -> Response {
    if let Some(origin) = origin(headers).and_then(|o| HeaderValue::from_str(o).ok()) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("origin"));
    }
    response
}

/// `OPTIONS /sse/…`: what a page's `fetch` with a JSON body asks first.
pub fn preflight(state: &AppState, headers: &HeaderMap) -> Response {
    let origin = origin(headers);
    if !state.origins.allows(origin) {
        return foreign_origin(origin);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, authorization"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    cors(response, headers)
}

/// A request after shutdown began.
pub fn shutting_down() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "shutting_down",
        "hub shutting down",
    )
}
