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
    hubctl::assert_failed(&out, "HTTP 400 bad_room");
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
    hubctl::assert_failed(&out, "HTTP 401");
    assert!(hubctl::stdout(&out).is_empty());
}

async fn publish_batch(env: &Env, file: &std::path::Path) -> std::process::Output {
    let url = env.api_url(0);
    let file = file.to_str().expect("utf-8 path");
    let args = ["api", "--url", &url, "publish-batch", file];
    hubctl::run(&args, &[("HUB_API_KEY", API_KEY)]).await
}

#[tokio::test]
async fn publish_batch_sends_a_file_in_order_and_names_each_refusal() {
    let env = Env::start("api-batch", 2, &[("HUB_HISTORY_SIZE", "1000")]).await;
    // 150 messages to one room (two requests of the API's 100), one with a bad room among them.
    let mut lines: Vec<String> = (0..150)
        .map(|i| format!(r#"{{"room":"feed","content":"n{i}"}}"#))
        .collect();
    lines.insert(120, r#"{"room":"a b","content":"nowhere"}"#.to_owned());
    let file = env.dir.join("batch.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").expect("batch file");
    let out = publish_batch(&env, &file).await;
    hubctl::assert_failed(&out, "1 of 151 messages refused");
    let results: Vec<Value> = hubctl::stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(results.len(), 151, "a line per message");
    assert_eq!(
        results[120]["error"]["code"], "bad_room",
        "{}",
        results[120]
    );
    let offsets: Vec<u64> = results
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 120)
        .map(|(_, r)| {
            r["offset"]
                .as_u64()
                .unwrap_or_else(|| panic!("stored: {r}"))
        })
        .collect();
    assert_eq!(
        offsets,
        (1..=150).collect::<Vec<u64>>(),
        "stored in the file's order"
    );

    // Read through the other hub: stored once each, in the file's order, with their ids.
    let history = env.api(1).history("feed").await.expect("history");
    let contents: Vec<&str> = history
        .iter()
        .map(|m| m["content"].as_str().expect("content"))
        .collect();
    let sent: Vec<String> = (0..150).map(|i| format!("n{i}")).collect();
    assert_eq!(contents, sent);
    for (message, result) in history
        .iter()
        .zip(results.iter().filter(|r| r["id"].is_string()))
    {
        assert_eq!(message["id"], result["id"]);
    }

    // A bad line fails the whole file before anything is sent.
    std::fs::write(
        &file,
        "{\"room\":\"feed\",\"content\":\"late\"}\n{\"room\":\"feed\"}\n",
    )
    .expect("bad file");
    let out = publish_batch(&env, &file).await;
    hubctl::assert_failed(&out, "line 2:");
    assert!(hubctl::stdout(&out).is_empty());
    assert_eq!(
        env.api(1).history("feed").await.expect("history").len(),
        150
    );
}
