//! `hubctl pub` publishes one message and prints the hub's ack — the id and offset the message
//! is stored under — and fails with the error's code when the hub refuses it.

use serde_json::Value;

use crate::env::Env;
use crate::hubctl;
use crate::support::jwt;

#[tokio::test]
async fn pub_prints_the_ack_of_the_stored_message() {
    let env = Env::start("pub", 1, &[]).await;
    let out = hubctl::run(
        &["pub", "--url", &env.ws_url(0), "news", "hello from hubctl"],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", hubctl::stderr(&out));
    let stdout = hubctl::stdout(&out);
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    let ack: Value = serde_json::from_str(stdout.trim()).expect("the ack is JSON");
    let id = ack["id"].as_str().expect("an id");
    let offset = ack["offset"].as_u64().expect("an offset");

    let history = env.api(0).history("news").await.expect("history");
    let stored = history
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in the history: {history:?}"));
    assert_eq!(stored["content"], "hello from hubctl");
    assert_eq!(stored["offset"].as_u64(), Some(offset));
}

#[tokio::test]
async fn pub_takes_a_token_from_the_environment_and_fails_without_one() {
    let secret = "hubctl-test-secret-0123456789-abcdefghijklmnop";
    let env = Env::start(
        "pub-jwt",
        1,
        &[("HUB_AUTH_MODE", "jwt"), ("HUB_JWT_SECRETS", secret)],
    )
    .await;
    let token = jwt::sign(secret, "u-ops", Some("Ops"), 60_000);
    let url = env.ws_url(0);
    let out = hubctl::run(
        &["pub", "--url", &url, "ops", "deployed"],
        &[("HUB_TOKEN", &token)],
    )
    .await;
    assert!(out.status.success(), "{}", hubctl::stderr(&out));
    let ack: Value = serde_json::from_str(hubctl::stdout(&out).trim()).expect("the ack");
    let history = env.api(0).history("ops").await.expect("history");
    let stored = history
        .iter()
        .find(|m| m["id"] == ack["id"])
        .expect("stored");
    assert_eq!(
        stored["user"]["id"], "u-ops",
        "the hub took the token's user"
    );

    // The hub waits `auth_timeout` (5 s) for a token before it closes with 4001: then the client
    // knows it cannot get in (a fixed token, or none, cannot be renewed).
    let out = hubctl::run(
        &["pub", "--url", &url, "--timeout", "20s", "ops", "denied"],
        &[],
    )
    .await;
    let err = hubctl::assert_failed(&out, "unauthorized");
    assert!(hubctl::stdout(&out).is_empty());
    assert!(!err.contains(&token), "the token is never printed");
}
