//! The demo backend the hubs call (README, "Backend hooks" and "Webhooks"): `POST /hooks/publish`,
//! the publish proxy of `moderated:` rooms (a word list), and `POST /hooks/webhooks`, whose latest
//! events the status page lists. Both refuse with 401 a request the hubs did not sign with
//! `hook_secret`; without one they do not exist (404).

pub mod moderation;
pub mod signature;
pub mod webhook_log;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::hyper::body::Bytes;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use self::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use self::webhook_log::{Batch, WebhookLog};

/// A hook body larger than this is refused (413): a publish carries one message (the hubs' own
/// limit is 64 KiB by default), a webhook batch at most 100 events.
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;

/// What the hook routes share: the secret and the received webhook events.
#[derive(Debug, Clone)]
pub struct Hooks {
    secret: Option<SecretString>,
    log: WebhookLog,
}

impl Hooks {
    pub fn new(secret: Option<SecretString>) -> Self {
        Hooks {
            secret,
            log: WebhookLog::default(),
        }
    }

    pub fn configured(&self) -> bool {
        self.secret.is_some()
    }

    pub fn log(&self) -> &WebhookLog {
        &self.log
    }

    /// The response that refuses the request, when its signature does not pass.
    fn refusal(&self, sig: Option<&str>, ts: Option<&str>, body: &[u8]) -> Option<Response> {
        let Some(secret) = &self.secret else {
            return Some(error(StatusCode::NOT_FOUND, "not_found", "no hook_secret"));
        };
        let e = signature::verify(secret, body, sig, ts, now_ms()).err()?;
        tracing::warn!(error = %e, "hook request refused");
        Some(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            &e.to_string(),
        ))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "error": { "code": code, "message": message } });
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// `POST /hooks/publish` and `POST /hooks/webhooks`.
pub fn routes(hooks: Arc<Hooks>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let signed = warp::post()
        .and(warp::header::optional::<String>(SIGNATURE_HEADER))
        .and(warp::header::optional::<String>(TIMESTAMP_HEADER))
        .and(warp::body::content_length_limit(MAX_BODY_BYTES))
        .and(warp::body::bytes());
    let with_hooks = warp::any().map(move || hooks.clone());
    let publish = warp::path!("hooks" / "publish")
        .and(with_hooks.clone())
        .and(signed)
        .map(publish);
    let webhooks = warp::path!("hooks" / "webhooks")
        .and(with_hooks)
        .and(signed)
        .map(webhooks);
    publish.or(webhooks).unify()
}

/// What the hub posts for a client's message (other fields ignored).
#[derive(Debug, Deserialize)]
struct PublishCall {
    room: String,
    #[serde(default)]
    user: Option<Value>,
    content: Value,
}

fn publish(hooks: Arc<Hooks>, sig: Option<String>, ts: Option<String>, body: Bytes) -> Response {
    if let Some(refusal) = hooks.refusal(sig.as_deref(), ts.as_deref(), &body) {
        return refusal;
    }
    let call: PublishCall = match serde_json::from_slice(&body) {
        Ok(call) => call,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_json", &e.to_string()),
    };
    let text = match &call.content {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let Some(word) = moderation::banned_word(&text) else {
        return warp::reply::json(&json!({})).into_response();
    };
    // Who and where, for the operator; never the message itself.
    let user = call
        .user
        .as_ref()
        .and_then(|u| u["id"].as_str())
        .unwrap_or("");
    tracing::info!(room = %call.room, user, word, "message refused by moderation");
    let message = format!("the word \"{word}\" is not allowed in moderated rooms");
    warp::reply::json(&json!({ "error": { "code": moderation::REFUSED_CODE, "message": message } }))
        .into_response()
}

fn webhooks(hooks: Arc<Hooks>, sig: Option<String>, ts: Option<String>, body: Bytes) -> Response {
    if let Some(refusal) = hooks.refusal(sig.as_deref(), ts.as_deref(), &body) {
        return refusal;
    }
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        // A 4xx: the hub retries it until webhook_max_age, and the operator sees why in our log.
        Err(e) => {
            tracing::warn!(error = %e, "webhook batch is not the JSON expected");
            return error(StatusCode::BAD_REQUEST, "bad_json", &e.to_string());
        }
    };
    let count = batch.events.len();
    let new = hooks.log.add(batch.events);
    tracing::info!(events = count, new, "webhook batch received");
    warp::reply::json(&json!({})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hook-secret-for-the-tests-0123456789";

    fn hooks() -> Arc<Hooks> {
        Arc::new(Hooks::new(Some(SecretString::from(SECRET))))
    }

    fn signed(path: &str, body: &str, at_ms: u64) -> warp::test::RequestBuilder {
        let secret = SecretString::from(SECRET);
        warp::test::request()
            .method("POST")
            .path(path)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature::sign(&secret, body.as_bytes()))
            .header(TIMESTAMP_HEADER, at_ms.to_string())
            .body(body)
    }

    fn json_of(res: &warp::http::Response<Bytes>) -> Value {
        serde_json::from_slice(res.body()).expect("a JSON body")
    }

    #[tokio::test]
    async fn the_publish_hook_allows_clean_messages_and_refuses_banned_words() {
        let routes = routes(hooks());
        let clean =
            r#"{"client_id":"c1","user":{"id":"u1"},"room":"moderated:lobby","content":"hello"}"#;
        let res = signed("/hooks/publish", clean, now_ms())
            .reply(&routes)
            .await;
        assert_eq!(res.status(), 200);
        assert_eq!(json_of(&res), json!({}));
        let banned = r#"{"client_id":"c1","user":{"id":"u1"},"room":"moderated:lobby","content":"cheap Casino here"}"#;
        let res = signed("/hooks/publish", banned, now_ms())
            .reply(&routes)
            .await;
        assert_eq!(res.status(), 200);
        let answer = json_of(&res);
        assert_eq!(answer["error"]["code"], "refused", "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("casino"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn unsigned_badly_signed_or_stale_requests_are_401_and_change_nothing() {
        let hooks = hooks();
        let routes = routes(hooks.clone());
        let body = r#"{"id":"b1","time_ms":1,"events":[{"id":"e1","name":"room_occupied","room":"r","time_ms":1}]}"#;
        let stale = signed(
            "/hooks/webhooks",
            body,
            now_ms() - signature::MAX_SKEW_MS - 1000,
        );
        let forged = warp::test::request()
            .method("POST")
            .path("/hooks/webhooks")
            .header(
                SIGNATURE_HEADER,
                signature::sign(&SecretString::from("other"), body.as_bytes()),
            )
            .header(TIMESTAMP_HEADER, now_ms().to_string())
            .body(body);
        let unsigned = warp::test::request()
            .method("POST")
            .path("/hooks/publish")
            .header(TIMESTAMP_HEADER, now_ms().to_string())
            .body(r#"{"room":"moderated:x","content":"spam"}"#);
        for req in [stale, forged, unsigned] {
            let res = req.reply(&routes).await;
            assert_eq!(res.status(), 401);
            assert_eq!(json_of(&res)["error"]["code"], "unauthorized");
        }
        assert!(hooks.log().view(true).events.is_empty(), "nothing recorded");
        let res = signed("/hooks/webhooks", body, now_ms())
            .reply(&routes)
            .await;
        assert_eq!(res.status(), 200);
        assert_eq!(hooks.log().view(true).events.len(), 1);
    }

    #[tokio::test]
    async fn without_a_hook_secret_the_hooks_are_404() {
        let routes = routes(Arc::new(Hooks::new(None)));
        let res = signed("/hooks/publish", "{}", now_ms())
            .reply(&routes)
            .await;
        assert_eq!(res.status(), 404);
    }

    #[tokio::test]
    async fn a_signed_body_that_is_not_the_expected_json_is_400() {
        let routes = routes(hooks());
        for path in ["/hooks/publish", "/hooks/webhooks"] {
            let res = signed(path, "not json", now_ms()).reply(&routes).await;
            assert_eq!(res.status(), 400, "{path}");
            assert_eq!(json_of(&res)["error"]["code"], "bad_json");
        }
    }
}
