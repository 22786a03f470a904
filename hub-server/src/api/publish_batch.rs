//! `POST /api/publish/batch`: many messages in one request, each published as `POST /api/publish`
//! would publish it, each answered on its own (a refused one does not refuse the others).
//!
//! Why: a backend that sends a notification to each of thousands of users pays one HTTP round
//! trip per message otherwise, and so does the hub; batched, the messages also go to Redis in
//! one pipeline.

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::errors::Detail;
use super::idempotency::{Answer, Idempotency};
use super::publish::{self, PublishRequest};
use crate::state::AppState;

/// Most messages in one request (Pusher's batch takes 10, Centrifugo's is unbounded).
pub const MAX_MESSAGES: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub messages: Vec<PublishRequest>,
}

#[derive(Debug, Serialize)]
pub struct BatchAnswer {
    /// One per message, in the request's order.
    pub results: Vec<ItemAnswer>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ItemAnswer {
    Published(Answer),
    Refused { error: Detail },
}

/// Publishes every message of the batch at once: each is queued for Redis in the request's order
/// (messages with an `idempotency_key` first ask Redis whether the key is taken, so they can
/// overtake), and the answer waits for all of them.
pub async fn publish(
    state: &AppState,
    idempotency: &Idempotency,
    request: BatchRequest,
) -> Result<BatchAnswer, ApiError> {
    let count = request.messages.len();
    if count == 0 || count > MAX_MESSAGES {
        return Err(ApiError::bad_field(
            "bad_batch",
            format!("messages must hold 1-{MAX_MESSAGES} messages, not {count}"),
        ));
    }
    let each = request
        .messages
        .into_iter()
        .map(|message| publish::publish(state, idempotency, message));
    let results = join_all(each)
        .await
        .into_iter()
        .map(|result| match result {
            Ok(answer) => ItemAnswer::Published(answer),
            Err(err) => ItemAnswer::Refused {
                error: err.detail(),
            },
        })
        .collect();
    Ok(BatchAnswer { results })
}
