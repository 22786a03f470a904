//! Must-hold 7: without REDIS_URL one hub serves chat on its own and says so in its log.

use std::time::{Duration, Instant};

use crate::support::client::numbered;
use crate::support::{Client, Hub, Sent, assert_nothing_more, assert_receives};

#[tokio::test]
async fn without_redis_url_one_hub_serves_chat_standalone() {
    let hub = Hub::builder("solo").start().await;
    let health = hub.health().await.expect("GET /health");
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.json()["bridge"], "disabled", "{health:?}");

    let mut a = Client::connect(&hub).await;
    let mut b = Client::connect(&hub).await;
    let from_a = numbered("a", 3);
    let from_b = numbered("b", 3);
    for (x, y) in from_a.iter().zip(&from_b) {
        a.say("general", x).await;
        b.say("general", y).await;
    }
    let (a_id, b_id) = (a.id.clone(), b.id.clone());
    assert_receives(
        &mut b,
        "message",
        Some("general"),
        &[Sent {
            from: &a_id,
            hub: "solo",
            contents: &from_a,
        }],
    )
    .await;
    assert_receives(
        &mut a,
        "message",
        Some("general"),
        &[Sent {
            from: &b_id,
            hub: "solo",
            contents: &from_b,
        }],
    )
    .await;
    assert_nothing_more(&mut [&mut a, &mut b]).await;

    // Logs may be written a moment after start-up work; give them a little time.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !hub.log().to_lowercase().contains("standalone") {
        assert!(
            Instant::now() < deadline,
            "hub log does not say it runs standalone:\n{}",
            hub.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
