//! `POST /api/publish` and `POST /api/broadcast`: a backend sends a message as a user of its
//! choice, through [`crate::publish::from_api`] (delivered once on every hub, refused while Redis
//! is down), at most once per `idempotency_key` (see [`super::idempotency`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ApiError;
use super::idempotency::{self, Answer, Claim, Idempotency};
use crate::error::ProtocolError;
use crate::protocol::{Room, User};
use crate::publish::{self, ApiPublishError, Published};
use crate::state::AppState;

/// Longest user id and display name a backend may set, in bytes.
const MAX_USER_ID: usize = 128;
const MAX_USER_NAME: usize = 64;

/// The sender when the request names none.
const API_USER: &str = "api";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    pub room: String,
    pub content: String,
    pub user: Option<ApiUser>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    pub content: String,
    pub user: Option<ApiUser>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiUser {
    pub id: String,
    pub name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BroadcastAnswer {
    pub id: String,
}

impl ApiUser {
    fn check(&self) -> Result<(), ApiError> {
        let clean = |s: &str| !s.chars().any(char::is_control);
        if self.id.is_empty() || self.id.len() > MAX_USER_ID || !clean(&self.id) {
            return Err(ApiError::bad_field(
                "bad_user",
                format!("user.id must be 1-{MAX_USER_ID} bytes without control characters"),
            ));
        }
        if let Some(name) = &self.name
            && (name.is_empty() || name.len() > MAX_USER_NAME || !clean(name))
        {
            return Err(ApiError::bad_field(
                "bad_user",
                format!("user.name must be 1-{MAX_USER_NAME} bytes without control characters"),
            ));
        }
        Ok(())
    }
}

/// The answer when the message went to Redis and no reply came: it may be stored (and then
/// delivered), so "nothing was published" would not be true.
const UNCONFIRMED: &str = "redis did not confirm in time: the message may still be published \
                           (retry with the same idempotency_key to publish it at most once)";

/// The answer to a publish or broadcast that failed: `nothing` when it was never sent.
fn refused(err: ApiPublishError, nothing: &'static str) -> ApiError {
    match err {
        ApiPublishError::Unavailable => ApiError::Unavailable(nothing),
        ApiPublishError::Unconfirmed => ApiError::Unavailable(UNCONFIRMED),
    }
}

fn user(user: &Option<ApiUser>) -> User<'_> {
    match user {
        Some(u) => User {
            id: &u.id,
            name: u.name.as_deref(),
        },
        None => User {
            id: API_USER,
            name: None,
        },
    }
}

fn check_content(state: &AppState, content: &str) -> Result<(), ApiError> {
    if content.is_empty() {
        return Err(ProtocolError::EmptyContent.into());
    }
    let limit = state.settings.max_message_bytes;
    if content.len() > limit {
        return Err(ApiError::TooLarge {
            what: "content",
            limit,
        });
    }
    Ok(())
}

/// Validates the request, then publishes (once per idempotency key).
pub async fn publish(
    state: &AppState,
    idempotency: &Idempotency,
    request: PublishRequest,
) -> Result<Answer, ApiError> {
    let room = Room::parse(&request.room)?;
    // Any known namespace: `client_publish = false` is about clients, not the server API.
    state.settings.namespaces.lookup(&room)?;
    check_content(state, &request.content)?;
    if let Some(u) = &request.user {
        u.check()?;
    }
    let send = || async {
        let published = publish::from_api(
            state,
            Some(room.clone()),
            &request.content,
            user(&request.user),
        )
        .await
        .map_err(|err| refused(err, "redis is unavailable: nothing was published"))?;
        let Published { id, offset, epoch } = published;
        tracing::info!(%room, message_id = %id, "published through the server API");
        Ok(Answer { id, offset, epoch })
    };
    let Some(key) = &request.idempotency_key else {
        return send().await;
    };
    idempotency::check_key(key)?;
    // A duplicate waits for the first request's answer as long as that one may take; by then
    // the first has answered, or its marker has expired and this one claims the key.
    let deadline = tokio::time::Instant::now()
        + Idempotency::pending_ttl(state.settings.redis_timeout)
        + Duration::from_secs(1);
    loop {
        match idempotency.claim(key).await? {
            Claim::Answered(answer) => return Ok(answer),
            Claim::Mine(ticket) => {
                return match send().await {
                    Ok(answer) => {
                        idempotency.complete(key, ticket, &answer).await;
                        Ok(answer)
                    }
                    Err(err) => {
                        idempotency.release(key, ticket).await;
                        Err(err)
                    }
                };
            }
            Claim::Pending if tokio::time::Instant::now() >= deadline => {
                return Err(ApiError::InProgress);
            }
            Claim::Pending => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

pub async fn broadcast(
    state: &AppState,
    request: BroadcastRequest,
) -> Result<BroadcastAnswer, ApiError> {
    check_content(state, &request.content)?;
    if let Some(u) = &request.user {
        u.check()?;
    }
    let published = publish::from_api(state, None, &request.content, user(&request.user))
        .await
        .map_err(|err| refused(err, "redis is unavailable: nothing was broadcast"))?;
    tracing::info!(message_id = %published.id, "broadcast through the server API");
    Ok(BroadcastAnswer { id: published.id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_user(id: &str, name: Option<&str>) -> ApiUser {
        ApiUser {
            id: id.into(),
            name: name.map(Into::into),
        }
    }

    #[test]
    fn a_backend_names_a_plausible_user_or_is_the_api() {
        assert!(api_user("u1", Some("Ana")).check().is_ok());
        for bad in [
            api_user("", None),
            api_user("a\nb", None),
            api_user(&"u".repeat(MAX_USER_ID + 1), None),
            api_user("u1", Some("")),
            api_user("u1", Some("a\u{7}")),
        ] {
            assert_eq!(bad.check().unwrap_err().code(), "bad_user", "{bad:?}");
        }
        assert_eq!(
            user(&None),
            User {
                id: "api",
                name: None
            }
        );
    }
}
