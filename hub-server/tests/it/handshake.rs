//! Issue 14.5: the WebSocket opening handshake over raw TCP, against a real hub. A good request is
//! switched with the RFC 6455 accept value; a missing or bad `Sec-WebSocket-Key` or a missing
//! `Upgrade`/`Connection: upgrade` is 400 (4.2.1); a version other than 13 is 426 with
//! `Sec-WebSocket-Version: 13` (4.4); none of them leaves a session behind.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Client, Hub};

/// RFC 6455 1.3's example: this key's accept value is `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The headers of a good upgrade, with `drop` left out and `extra` added.
fn upgrade_headers<'a>(drop: &[&str], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers: Vec<(&str, &str)> = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ]
    .into_iter()
    .filter(|(name, _)| !drop.contains(name))
    .collect();
    headers.extend_from_slice(extra);
    headers
}

/// Sends one HTTP/1.1 request and reads the response head (a 101 keeps the socket open: reading
/// to EOF would wait for ever).
async fn exchange(hub: &Hub, method: &str, headers: &[(&str, &str)]) -> Head {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", hub.port))
            .await
            .expect("connect");
        let mut request = format!("{method} /ws HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", hub.port);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        let mut buf = [0u8; 1024];
        while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before a response head: {raw:?}");
            raw.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, _) = text.split_once("\r\n\r\n").expect("head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Head { status, headers }
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("a response within 10 s")
}

/// After the refusals: nothing is left connected, and a real client still gets in and chats.
async fn hub_still_serves(hub: &Hub) {
    for _ in 0..50 {
        if hub.connections().await == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hub.connections().await, Some(0), "{}", hub.log());
    let mut a = Client::connect(hub).await;
    let mut b = Client::connect(hub).await;
    a.say("general", "after the refusals").await;
    let got = b.recv_chat(1).await;
    assert_eq!(got[0]["content"], "after the refusals");
}

#[tokio::test]
async fn a_good_handshake_is_switched_with_the_rfc_accept_value() {
    let hub = Hub::builder("hub-hs-ok").start().await;
    let head = exchange(&hub, "GET", &upgrade_headers(&[], &[])).await;
    assert_eq!(head.status, 101, "{:?}", head.headers);
    assert_eq!(head.header("Sec-WebSocket-Accept"), Some(ACCEPT));
    assert!(
        head.header("Upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    );
    assert!(
        head.header("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("upgrade"))
    );
    // Tokens are matched case-insensitively and in lists (RFC 6455 4.2.1, RFC 7230 6.1).
    let listed = upgrade_headers(
        &["Upgrade", "Connection"],
        &[
            ("Upgrade", "WebSocket"),
            ("Connection", "keep-alive, Upgrade"),
        ],
    );
    assert_eq!(exchange(&hub, "GET", &listed).await.status, 101);
}

#[tokio::test]
async fn a_missing_or_bad_key_is_400() {
    let hub = Hub::builder("hub-hs-key").start().await;
    let missing = exchange(&hub, "GET", &upgrade_headers(&["Sec-WebSocket-Key"], &[])).await;
    assert_eq!(missing.status, 400, "{:?}", missing.headers);
    assert_eq!(missing.header("Sec-WebSocket-Accept"), None);
    for bad in [
        "",
        "not a key",
        "dGhlIHNhbXBsZSBub25jZQ",       // no padding: not 16 bytes
        "dGhlIHNhbXBsZSBub25jZQ=",      // 16 bytes would need two
        "c2hvcnQ=",                     // 5 bytes
        "dGhlIHNhbXBsZSBub25jZSEhIQ==", // 19 bytes
        "dGhlIHNhbXBsZSBub25j*Q==",     // not base64
    ] {
        let head = exchange(
            &hub,
            "GET",
            &upgrade_headers(&["Sec-WebSocket-Key"], &[("Sec-WebSocket-Key", bad)]),
        )
        .await;
        assert_eq!(head.status, 400, "key {bad:?}: {:?}", head.headers);
        assert_eq!(head.header("Sec-WebSocket-Accept"), None, "key {bad:?}");
    }
    let twice = exchange(
        &hub,
        "GET",
        &upgrade_headers(&[], &[("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==")]),
    )
    .await;
    assert_eq!(twice.status, 400, "two keys");
    hub_still_serves(&hub).await;
}

#[tokio::test]
async fn another_version_is_426_naming_13() {
    let hub = Hub::builder("hub-hs-version").start().await;
    for version in ["8", "12", "14", "13, 8", "abc"] {
        let head = exchange(
            &hub,
            "GET",
            &upgrade_headers(
                &["Sec-WebSocket-Version"],
                &[("Sec-WebSocket-Version", version)],
            ),
        )
        .await;
        assert_eq!(head.status, 426, "version {version:?}: {:?}", head.headers);
        assert_eq!(
            head.header("Sec-WebSocket-Version"),
            Some("13"),
            "version {version:?}"
        );
    }
    // No version at all is no WebSocket handshake (400), told the version all the same.
    let missing = exchange(
        &hub,
        "GET",
        &upgrade_headers(&["Sec-WebSocket-Version"], &[]),
    )
    .await;
    assert_eq!(missing.status, 400, "{:?}", missing.headers);
    assert_eq!(missing.header("Sec-WebSocket-Version"), Some("13"));
    hub_still_serves(&hub).await;
}

#[tokio::test]
async fn no_upgrade_is_400_and_not_switched() {
    let hub = Hub::builder("hub-hs-upgrade").start().await;
    for (what, headers) in [
        ("no Upgrade", upgrade_headers(&["Upgrade"], &[])),
        ("no Connection", upgrade_headers(&["Connection"], &[])),
        (
            "Connection without upgrade",
            upgrade_headers(&["Connection"], &[("Connection", "keep-alive")]),
        ),
        (
            "Upgrade to something else",
            upgrade_headers(&["Upgrade"], &[("Upgrade", "h2c")]),
        ),
    ] {
        let head = exchange(&hub, "GET", &headers).await;
        assert_eq!(head.status, 400, "{what}: {:?}", head.headers);
        assert_eq!(head.header("Sec-WebSocket-Accept"), None, "{what}");
    }
    // RFC 6455 4.1: the handshake is a GET.
    let post = exchange(
        &hub,
        "POST",
        &upgrade_headers(&[], &[("Content-Length", "0")]),
    )
    .await;
    assert!(
        (400..500).contains(&post.status),
        "POST: {} {:?}",
        post.status,
        post.headers
    );
    hub_still_serves(&hub).await;
}
