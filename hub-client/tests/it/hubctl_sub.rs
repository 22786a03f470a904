//! `hubctl sub` prints each message of a room once, in order, as the hub's JSON frame — the
//! history asked for, live messages, and what was said while its hub was killed and restarted.

use std::time::Duration;

use serde_json::Value;

use crate::env::Env;
use crate::hubctl;
use crate::support::proxy::TcpProxy;

const WAIT: Duration = Duration::from_secs(30);

/// Publishes `<tag>-0..n` to `room` through hub `via` of `env`; the ids the hub acknowledged.
async fn publish(env: &Env, via: usize, room: &str, tag: &str, n: usize) -> Vec<(String, String)> {
    let mut acked = Vec::new();
    for i in 0..n {
        let content = format!("{tag}-{i}");
        let stored = env
            .api(via)
            .publish(room, &content, &format!("it-sub-{content}"))
            .await
            .expect("published");
        acked.push((content, stored.id));
    }
    acked
}

#[tokio::test]
async fn sub_prints_each_message_once_in_order_across_a_hub_restart() {
    let mut env = Env::start("sub-restart", 2, &[]).await;
    // hubctl reaches h1 through a proxy, so h1 restarted (on a new port) is at the same address.
    let proxy = TcpProxy::start(env.hubs[0].port).await.expect("proxy");
    let url = format!("ws://127.0.0.1:{}/ws", proxy.port);
    let mut expected = publish(&env, 1, "r", "a", 10).await;

    let mut sub = hubctl::spawn(&["sub", "--url", &url, "--history", "100", "r"]);
    let mut lines = Vec::new();
    while lines.len() < 10 {
        lines.push(sub.line(WAIT).await.expect("the history, printed"));
    }
    expected.extend(publish(&env, 1, "r", "b", 10).await);
    while lines.len() < 20 {
        lines.push(sub.line(WAIT).await.expect("live messages, printed"));
    }

    env.hubs[0].kill().await;
    sub.stderr_until("disconnected", WAIT)
        .await
        .expect("hubctl says it lost its hub");
    // Said while hubctl has no hub: it must fetch these after the restart.
    expected.extend(publish(&env, 1, "r", "c", 10).await);
    env.hubs[0].start().await.expect("h1 restarts");
    proxy.retarget(env.hubs[0].port);
    sub.stderr_until("connected to h1", WAIT)
        .await
        .expect("hubctl reconnects");
    expected.extend(publish(&env, 1, "r", "d", 10).await);
    // A marker last: nothing may come twice before it.
    expected.extend(publish(&env, 1, "r", "marker", 1).await);
    while lines.len() < expected.len() {
        match sub.line(WAIT).await {
            Some(line) => lines.push(line),
            None => panic!(
                "hubctl printed {} of {} lines:\n{}",
                lines.len(),
                expected.len(),
                lines.join("\n")
            ),
        }
    }

    let frames: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let got: Vec<(String, String)> = frames
        .iter()
        .map(|f| {
            assert_eq!(f["type"], "message", "{f}");
            assert_eq!(f["room"], "r", "{f}");
            (
                f["content"].as_str().unwrap_or_default().to_owned(),
                f["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got, expected,
        "each message once, in order, under the id the hub acknowledged"
    );
    let offsets: Vec<u64> = frames
        .iter()
        .map(|f| f["offset"].as_u64().expect("offset"))
        .collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets increase: {offsets:?}"
    );
    assert!(
        frames[..10].iter().all(|f| f["replayed"] == true),
        "the history is marked replayed"
    );

    let status = sub.terminate().await;
    assert!(
        status.success(),
        "hubctl sub ends cleanly on SIGTERM: {status}"
    );
}
