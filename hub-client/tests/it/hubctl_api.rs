//! `hubctl api` round trips with the server API: what it publishes is stored and read back, the
//! read calls answer JSON of the documented shape, and the API's errors come out with their code.

use serde_json::Value;

use crate::env::Env;
use crate::hubctl;
use crate::support::hub::API_KEY;

async fn api(env: &Env, args: &[&str]) -> Value {
    let url = env.api_url(0);
    let mut all = vec!["api", "--url", &url];
    all.extend_from_slice(args);
    let out = hubctl::run(&all, &[("HUB_API_KEY", API_KEY)]).await;
    assert!(
        out.status.success(),
        "hubctl {args:?}: {}",
        hubctl::stderr(&out)
    );
    let stdout = hubctl::stdout(&out);
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[tokio::test]
async fn api_calls_round_trip() {
    let env = Env::start("api", 1, &[]).await;
    let first = api(
        &env,
        &[
            "publish",
            "ops",
            "deploy done",
            "--user-id",
            "ci",
            "--user-name",
            "CI",
            "--idempotency-key",
            "deploy-1",
        ],
    )
    .await;
    let id = first["id"].as_str().expect("id").to_owned();
    assert!(
        first["offset"].as_u64().is_some() && first["epoch"].is_string(),
        "{first}"
    );
    let again = api(
        &env,
        &[
            "publish",
            "ops",
            "deploy done",
            "--idempotency-key",
            "deploy-1",
        ],
    )
    .await;
    assert_eq!(again, first, "the same key answers the first result");

    let history = api(&env, &["history", "ops", "--limit", "5"]).await;
    let messages = history["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "stored once: {history}");
    assert_eq!(messages[0]["id"], id.as_str());
    assert_eq!(
        messages[0]["user"],
        serde_json::json!({"id": "ci", "name": "CI"})
    );
    let epoch = history["epoch"].as_str().expect("epoch").to_owned();
    let since = api(
        &env,
        &[
            "history",
            "ops",
            "--since-epoch",
            &epoch,
            "--since-offset",
            "0",
        ],
    )
    .await;
    assert_eq!(since["recovered"], true, "{since}");

    let presence = api(&env, &["presence", "ops"]).await;
    assert_eq!(
        (presence["room"].as_str(), presence["count"].as_u64()),
        (Some("ops"), Some(0))
    );
    assert!(api(&env, &["rooms"]).await["rooms"].is_array());
    let hubs = api(&env, &["hubs"]).await;
    assert_eq!(hubs["hubs"][0]["name"], "h1", "{hubs}");
    assert!(api(&env, &["broadcast", "maintenance at 22:00"]).await["id"].is_string());
    let gone = api(&env, &["disconnect", "nobody"]).await;
    assert_eq!(gone["user"], "nobody");
}

#[tokio::test]
async fn api_errors_come_out_with_their_code() {
    let env = Env::start("api-errors", 1, &[]).await;
    let url = env.api_url(0);
    let out = hubctl::run(
        &[
            "api", "--url", &url, "--key", API_KEY, "publish", "a b", "x",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        hubctl::stderr(&out).contains("HTTP 400 bad_room"),
        "{}",
        hubctl::stderr(&out)
    );
    let out = hubctl::run(
        &[
            "api",
            "--url",
            &url,
            "--key",
            "not-the-key-0123456789",
            "rooms",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        hubctl::stderr(&out).contains("HTTP 401"),
        "{}",
        hubctl::stderr(&out)
    );
    assert!(hubctl::stdout(&out).is_empty());
}
