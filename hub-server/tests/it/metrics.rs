//! Issue 12 item 4: `/metrics` as a real Prometheus server sees it. Debian's `prometheus` scrapes
//! two bridged hubs' API listeners; both targets must be `up` through Prometheus's own query API,
//! a counter moved by chat must be read back there with the value the hub itself reports, and
//! `promtool check metrics` must find no problem in what the hubs serve.

use std::time::Duration;

use serde_json::Value;

use crate::support::prometheus::{Prometheus, promtool_check_metrics, value};
use crate::support::{Client, Hub, RedisServer, room};

/// The value of the unlabelled sample `name` in an exposition.
fn sample(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{exposition}"))
}

#[tokio::test]
async fn a_real_prometheus_scrapes_both_hubs_and_reads_back_what_chat_moved() {
    let redis = RedisServer::start().await;
    let h1 = Hub::builder("prom1")
        .redis(&redis)
        .api(crate::api::KEY)
        .start()
        .await;
    let h2 = Hub::builder("prom2")
        .redis(&redis)
        .api(crate::api::KEY)
        .start()
        .await;
    let targets: Vec<String> = [&h1, &h2]
        .iter()
        .map(|h| format!("127.0.0.1:{}", h.api_port.expect("api port")))
        .collect();
    let prometheus = Prometheus::start(&targets).await;

    let up = prometheus
        .wait_for("up", Duration::from_secs(30), |r| {
            r.len() == 2 && r.iter().all(|s| value(s) == 1.0)
        })
        .await;
    let mut instances: Vec<&str> = up
        .iter()
        .filter_map(|s| s["metric"]["instance"].as_str())
        .collect();
    instances.sort_unstable();
    let mut want: Vec<&str> = targets.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(instances, want, "{up:?}");
    let redis_up = prometheus
        .wait_for("realtime_hub_redis_up", Duration::from_secs(10), |r| {
            r.len() == 2
        })
        .await;
    assert!(redis_up.iter().all(|s| value(s) == 1.0), "{redis_up:?}");

    // Chat moves hub2's delivered counter: 10 messages from hub1 to 3 members on hub2.
    let r = room("prom");
    let mut sender = Client::connect(&h1).await;
    sender.join(&r).await;
    let mut receivers = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(&h2).await;
        c.join(&r).await;
        receivers.push(c);
    }
    for i in 0..10 {
        sender.say(&r, &format!("m{i}")).await;
    }
    for c in &mut receivers {
        c.recv_chat(10).await;
    }
    // Prometheus must come to hold what hub2 itself reports (read again each time: anything
    // else hub2 delivers meanwhile moves both).
    let instance = &targets[1];
    let query = format!("realtime_hub_messages_delivered_total{{instance=\"{instance}\"}}");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (seen, delivered) = loop {
        let delivered = sample(&h2.metrics().await, "realtime_hub_messages_delivered_total");
        let seen = prometheus.query(&query).await;
        if seen.len() == 1 && value(&seen[0]) == delivered {
            break (seen, delivered);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus never read hub2's {delivered} delivered: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(delivered >= 30.0, "10 messages to 3 members: {delivered}");
    assert_eq!(seen[0]["metric"]["job"], Value::from("realtime-hub"));
    // Connections too: hub2 has 3.
    let query = format!("realtime_hub_connections{{instance=\"{instance}\"}}");
    prometheus
        .wait_for(&query, Duration::from_secs(15), |r| {
            r.len() == 1 && value(&r[0]) == 3.0
        })
        .await;

    for (hub, text) in [("prom1", h1.metrics().await), ("prom2", h2.metrics().await)] {
        let (ok, said) = promtool_check_metrics(&text);
        assert!(
            ok && said.trim().is_empty(),
            "promtool check metrics on {hub}: {said}\n{text}"
        );
    }
}
