//! `POST /sse/send` `{"session","frames":[…]}`: a running SSE session's client frames, handed to
//! its read loop in order, as if they had come over a WebSocket (the rate limit, the size limit
//! and every rule of the session apply there, not here).

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use warp::reply::{Reply, Response};

use super::origin;
use super::registry::{Registry, SessionId};
use super::reply::{cors, error, foreign_origin};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Send<'a> {
    #[serde(borrow)]
    session: &'a str,
    /// Each a frame as a JSON object, or as a string holding the frame's text.
    #[serde(borrow)]
    frames: Vec<&'a RawValue>,
}

pub async fn send(
    state: &AppState,
    registry: &Registry,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let origin = origin(headers);
    if !state.origins.allows(origin) {
        return foreign_origin(origin);
    }
    let request: Send<'_> = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(err) => {
            let message =
                format!("expected {{\"session\": string, \"frames\": [frame, …]}}: {err}");
            return cors(
                error(StatusCode::BAD_REQUEST, "bad_request", &message),
                headers,
            );
        }
    };
    let unknown = || {
        let message = "unknown or ended SSE session: open a new one";
        cors(
            error(StatusCode::NOT_FOUND, "unknown_session", message),
            headers,
        )
    };
    let Some(inbox) = SessionId::parse(request.session).and_then(|id| registry.inbox(&id)) else {
        return unknown();
    };
    let max = state.settings.max_message_bytes;
    for frame in request.frames {
        let text = match serde_json::from_str::<String>(frame.get()) {
            Ok(text) => text,
            Err(_) => frame.get().to_owned(),
        };
        // Too long: the session closes with 1009, as a WebSocket would past its message limit.
        let msg = match text.len() > max {
            true => Err(WsError::Capacity(CapacityError::MessageTooLong {
                size: text.len(),
                max_size: max,
            })),
            false => Ok(Message::text(text)),
        };
        // Waits while the session's read loop catches up: a client posting faster than it reads
        // is held back here, as TCP would hold back a WebSocket.
        if inbox.send(msg).await.is_err() {
            return unknown();
        }
    }
    cors(StatusCode::NO_CONTENT.into_response(), headers)
}
