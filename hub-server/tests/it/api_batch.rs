//! `POST /api/publish/batch` against real hubs and a real Redis: each message of a batch is
//! published as `POST /api/publish` publishes it (once on every hub, in the batch's order per
//! room), each is answered on its own in the request's order, a refused one refuses only itself,
//! and a malformed batch is refused whole with 400.

use serde_json::{Value, json};

use crate::api::KEY;
use crate::support::{Client, Hub, RedisServer, assert_nothing_more, member, room};

async fn hub(name: &str, redis: &RedisServer) -> Hub {
    Hub::builder(name)
        .api(KEY)
        .fast_bridge()
        .redis(redis)
        .start()
        .await
}

fn answer(resp: &crate::support::http::Response, status: u16) -> Value {
    assert_eq!(resp.status, status, "{resp:?}");
    resp.json()
}

/// `client` gets `contents` in this order, with offsets from `first` up.
async fn receives(client: &mut Client, contents: &[&str], first: u64) -> Vec<Value> {
    let frames = client.recv_chat(contents.len()).await;
    for (i, (frame, content)) in frames.iter().zip(contents).enumerate() {
        assert_eq!(frame["content"], *content, "{frame}");
        assert_eq!(frame["offset"], first + i as u64, "{frame}");
    }
    frames
}

#[tokio::test]
async fn each_message_of_a_batch_is_published_once_everywhere_and_answered_in_order() {
    let redis = RedisServer::start().await;
    let hubs = [hub("batch1", &redis).await, hub("batch2", &redis).await];
    let (ra, rb) = (room("batch-a"), room("batch-b"));
    let mut a1 = member(&hubs[0], &ra).await;
    let mut a2 = member(&hubs[1], &ra).await;
    let mut b2 = member(&hubs[1], &rb).await;

    let batch = json!({"messages": [
        {"room": ra, "content": "one"},
        {"room": rb, "content": "two", "user": {"id": "billing"}},
        {"room": ra, "content": "three"},
        {"room": "no room!", "content": "refused"},
        {"room": ra, "content": ""},
        {"room": ra, "content": "refused too", "user": {"id": ""}},
    ]});
    let body = answer(&hubs[0].api_post("/api/publish/batch", &batch).await, 200);
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 6, "{body}");
    let offsets: Vec<Option<u64>> = results.iter().map(|r| r["offset"].as_u64()).collect();
    assert_eq!(
        offsets[..3],
        [Some(1), Some(1), Some(2)],
        "per room, in the batch's order: {body}"
    );
    for r in &results[..3] {
        assert!(r["id"].as_str().is_some_and(|id| id.len() == 36), "{r}");
        assert!(r.get("error").is_none(), "{r}");
    }
    let codes: Vec<&str> = results[3..]
        .iter()
        .map(|r| r["error"]["code"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(codes, ["bad_room", "empty_content", "bad_user"], "{body}");

    for m in [&mut a1, &mut a2] {
        let frames = receives(m, &["one", "three"], 1).await;
        assert_eq!(frames[0]["id"], results[0]["id"]);
        assert_eq!(frames[1]["id"], results[2]["id"]);
    }
    let frames = receives(&mut b2, &["two"], 1).await;
    assert_eq!(frames[0]["user"], json!({"id": "billing"}));
    assert_nothing_more(&mut [&mut a1, &mut a2, &mut b2]).await;
}

#[tokio::test]
async fn a_repeated_batch_with_keys_publishes_each_keyed_message_once() {
    let redis = RedisServer::start().await;
    let hubs = [hub("bkey1", &redis).await, hub("bkey2", &redis).await];
    let r = room("batch-keys");
    let mut m = member(&hubs[1], &r).await;
    let batch = json!({"messages": [
        {"room": r, "content": "keyed", "idempotency_key": "batch-key-1"},
        {"room": r, "content": "unkeyed"},
    ]});
    let first = answer(&hubs[0].api_post("/api/publish/batch", &batch).await, 200);
    // Again, through the other hub: the keyed one answers as before and is not published again.
    let again = answer(&hubs[1].api_post("/api/publish/batch", &batch).await, 200);
    assert_eq!(again["results"][0], first["results"][0], "{first} {again}");
    assert_ne!(again["results"][1]["id"], first["results"][1]["id"]);
    let frames = m.recv_chat(3).await;
    let mut contents: Vec<&str> = frames
        .iter()
        .filter_map(|f| f["content"].as_str())
        .collect();
    contents.sort_unstable();
    assert_eq!(contents, ["keyed", "unkeyed", "unkeyed"]);
    assert_nothing_more(&mut [&mut m]).await;
}

#[tokio::test]
async fn a_malformed_batch_is_refused_whole_and_nothing_is_published() {
    let redis = RedisServer::start().await;
    let h = hub("bbad", &redis).await;
    let r = room("batch-bad");
    let mut m = member(&h, &r).await;
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"room": r, "content": format!("m{i}")}))
        .collect();
    let cases = [
        (json!({"messages": []}), "bad_batch"),
        (json!({"messages": many}), "bad_batch"),
        (json!({"messages": [{"room": r}]}), "bad_json"),
        (
            json!({"messages": [{"room": r, "content": "x", "extra": 1}]}),
            "bad_json",
        ),
        (
            json!({"message": [{"room": r, "content": "x"}]}),
            "bad_json",
        ),
        (json!([{"room": r, "content": "x"}]), "bad_json"),
    ];
    for (body, code) in cases {
        let resp = h.api_post("/api/publish/batch", &body).await;
        let got = answer(&resp, 400);
        assert_eq!(got["error"]["code"], code, "{body}: {got}");
    }
    assert_nothing_more(&mut [&mut m]).await;
}
