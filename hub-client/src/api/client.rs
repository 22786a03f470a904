//! The API client: one method per call, each one HTTP request with the key (see `http`), its
//! answer read into the call's type or its error into an [`ApiError`].

use std::fmt;
use std::time::Duration;

use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::http::{Base, exchange};
use super::models::{BatchMessage, History, HistoryQuery, Published};
use crate::message::User;

#[derive(Serialize)]
struct PublishBody<'a> {
    room: &'a str,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<&'a str>,
}

#[derive(Serialize)]
struct BatchBody<'a> {
    messages: &'a [BatchMessage],
}

/// What `POST /api/publish/batch` answers: one result per message, in the request's order.
#[derive(Deserialize)]
struct BatchAnswer {
    results: Vec<Value>,
}

#[derive(Serialize)]
struct BroadcastBody<'a> {
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a User>,
}

/// A client of one hub's server API. Any hub answers for the whole cluster.
#[derive(Clone)]
pub struct ApiClient {
    base: Base,
    key: String,
    timeout: Duration,
}

/// Never shows the key.
impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field(
                "url",
                &format!("http://{}{}", self.base.authority, self.base.prefix),
            )
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client of the API at `url` (`http://host:port`) with `key` (one of the hub's
    /// `HUB_API_KEYS`). Requests time out after 10 s ([`ApiClient::with_timeout`]).
    ///
    /// # Errors
    /// A URL that is not `http://host[:port]`.
    pub fn new(url: &str, key: &str) -> Result<ApiClient, ApiError> {
        Ok(ApiClient {
            base: Base::parse(url)?,
            key: key.to_owned(),
            timeout: Duration::from_secs(10),
        })
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Any call: `method path` (from `/api/…`) with a JSON `body`; the answer's JSON.
    ///
    /// # Errors
    /// The API's error (non-2xx), or a local one.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Value, ApiError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ApiError::local(format!("cannot encode the body: {e}")))?;
        let answer = exchange(&self.base, &self.key, method, path, body, self.timeout).await?;
        let json: Option<Value> = serde_json::from_slice(&answer.body).ok();
        if (200..300).contains(&answer.status) {
            return json.ok_or_else(|| {
                ApiError::local(format!("HTTP {}: the answer is not JSON", answer.status))
            });
        }
        let error = json.as_ref().and_then(|j| j.get("error"));
        let field = |name: &str| {
            error
                .and_then(|e| e.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Err(ApiError {
            status: Some(answer.status),
            code: field("code").unwrap_or_else(|| "http".to_owned()),
            message: field("message")
                .unwrap_or_else(|| String::from_utf8_lossy(&answer.body).into_owned()),
        })
    }

    async fn typed<T: for<'de> Deserialize<'de>>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ApiError> {
        let json = self.call(method, path, body).await?;
        serde_json::from_value(json)
            .map_err(|e| ApiError::local(format!("unexpected answer to {path}: {e}")))
    }

    /// `POST /api/publish`: stored and delivered once to every member on every hub, as from
    /// `user` (`{"id":"api"}` when none). The same `idempotency_key` within 5 minutes answers the
    /// first result and publishes nothing: retry with it after a `503`.
    ///
    /// # Errors
    /// `bad_room`, `empty_content`, `too_large`, `unavailable` (Redis down: nothing published), …
    pub async fn publish(
        &self,
        room: &str,
        content: &str,
        user: Option<&User>,
        idempotency_key: Option<&str>,
    ) -> Result<Published, ApiError> {
        let body = PublishBody {
            room,
            content,
            user,
            idempotency_key,
        };
        self.typed(Method::POST, "/api/publish", Some(&body)).await
    }

    /// `POST /api/publish/batch`: up to 100 messages in one request, each published as
    /// [`ApiClient::publish`] publishes it; messages without a key go to Redis in the given order
    /// (one room's keep their order). One result per message, in that order: a message refused on
    /// its own (a bad room, Redis unavailable for it) refuses only itself.
    ///
    /// # Errors
    /// The whole batch: `bad_batch` (none, or more than 100), a bad key, the API unreachable.
    /// Then nothing was published.
    pub async fn publish_batch(
        &self,
        messages: &[BatchMessage],
    ) -> Result<Vec<Result<Published, ApiError>>, ApiError> {
        let body = BatchBody { messages };
        let answer: BatchAnswer = self
            .typed(Method::POST, "/api/publish/batch", Some(&body))
            .await?;
        if answer.results.len() != messages.len() {
            return Err(ApiError::local(format!(
                "{} results for {} messages",
                answer.results.len(),
                messages.len()
            )));
        }
        Ok(answer.results.into_iter().map(batch_result).collect())
    }

    /// `POST /api/broadcast`: to every client on every hub. Answers `{"id"}`.
    ///
    /// # Errors
    /// As [`ApiClient::publish`].
    pub async fn broadcast(&self, content: &str, user: Option<&User>) -> Result<Value, ApiError> {
        let body = BroadcastBody { content, user };
        self.call(Method::POST, "/api/broadcast", Some(&body)).await
    }

    /// `GET /api/rooms`: every room with members on some live hub.
    ///
    /// # Errors
    /// `unavailable` while Redis does not answer.
    pub async fn rooms(&self) -> Result<Value, ApiError> {
        self.call(Method::GET, "/api/rooms", None::<&()>).await
    }

    /// `GET /api/rooms/{room}/presence`: who is in the room, across every hub.
    ///
    /// # Errors
    /// `bad_room`, `unavailable`.
    pub async fn presence(&self, room: &str) -> Result<crate::Presence, ApiError> {
        self.typed(
            Method::GET,
            &format!("/api/rooms/{}/presence", path_segment(room)?),
            None::<&()>,
        )
        .await
    }

    /// `GET /api/rooms/{room}/history`: the stored messages, oldest first.
    ///
    /// # Errors
    /// `bad_room`, `no_history` (a hub keeping none), `unavailable`.
    pub async fn history(&self, room: &str, query: &HistoryQuery) -> Result<History, ApiError> {
        let mut path = format!("/api/rooms/{}/history", path_segment(room)?);
        let mut params = Vec::new();
        if let Some(limit) = query.limit {
            params.push(format!("limit={limit}"));
        }
        if let Some((epoch, offset)) = &query.since {
            if !epoch.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ApiError::local(format!("bad epoch {epoch:?}")));
            }
            params.push(format!("since_epoch={epoch}&since_offset={offset}"));
        }
        if !params.is_empty() {
            path = format!("{path}?{}", params.join("&"));
        }
        self.typed(Method::GET, &path, None::<&()>).await
    }

    /// `GET /api/hubs`: every live hub with its figures.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn hubs(&self) -> Result<Value, ApiError> {
        self.call(Method::GET, "/api/hubs", None::<&()>).await
    }

    /// `POST /api/disconnect`: every connection of `user` on every hub is closed (4003).
    ///
    /// # Errors
    /// `bad_user`, `unavailable`.
    pub async fn disconnect(&self, user: &str) -> Result<Value, ApiError> {
        let body = serde_json::json!({ "user": user });
        self.call(Method::POST, "/api/disconnect", Some(&body))
            .await
    }
}

/// One result of a batch: the message's `{"id","offset","epoch"}`, or its `{"error"}`.
fn batch_result(result: Value) -> Result<Published, ApiError> {
    if let Some(error) = result.get("error") {
        let field = |name: &str| error.get(name).and_then(Value::as_str).map(str::to_owned);
        return Err(ApiError {
            status: None,
            code: field("code").unwrap_or_else(|| "refused".to_owned()),
            message: field("message").unwrap_or_default(),
        });
    }
    serde_json::from_value(result)
        .map_err(|e| ApiError::local(format!("unexpected result in a batch's answer: {e}")))
}

/// A room name as a path segment: the hub's room names need no escaping, so anything else is
/// refused here rather than sent somewhere unexpected.
fn path_segment(room: &str) -> Result<&str, ApiError> {
    let ok = (1..=64).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(room)
    } else {
        Err(ApiError::local(format!(
            "bad room name {room:?}: use 1-64 of A-Z a-z 0-9 _ . : -"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key_and_errors_read_well() {
        let api = ApiClient::new("http://127.0.0.1:8090", "secret-key-0123456789").expect("ok");
        assert!(!format!("{api:?}").contains("secret"));
        let e = ApiError {
            status: Some(400),
            code: "bad_room".into(),
            message: "bad room name".into(),
        };
        assert_eq!(e.to_string(), "HTTP 400 bad_room: bad room name");
        assert_eq!(ApiError::local("x").to_string(), "client: x");
    }

    #[test]
    fn a_batch_result_is_the_message_or_its_own_error() {
        let stored = serde_json::json!({"id": "m1", "offset": 3, "epoch": "9a1e22c4"});
        assert_eq!(
            batch_result(stored),
            Ok(Published {
                id: "m1".into(),
                offset: Some(3),
                epoch: Some("9a1e22c4".into()),
            })
        );
        let refused = serde_json::json!({"error": {"code": "bad_room", "message": "bad room"}});
        let e = batch_result(refused).expect_err("refused");
        assert_eq!((e.status, e.code.as_str()), (None, "bad_room"));
        let odd = batch_result(serde_json::json!({"what": 1})).expect_err("not a result");
        assert_eq!(e.message, "bad room");
        assert_eq!(odd.code, "client");
    }

    #[test]
    fn room_names_are_checked_before_they_reach_a_path() {
        assert!(path_segment("a/../b").is_err());
        assert!(path_segment("ops:1").is_ok());
    }
}
