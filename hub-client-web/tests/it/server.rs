//! The real server on a free port: serves the page and /health, answers the healthcheck, stops on signal.

use std::time::Duration;

use hub_client_web::{Settings, health};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn serves_answers_healthcheck_and_shuts_down() {
    let env = [("HUB_URL".to_string(), "ws://127.0.0.1:1/ws".to_string())];
    let settings = Settings::load_from(None, env).expect("settings");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(hub_client_web::run(listener, settings, async {
        let _ = stopped.await;
    }));

    let page = get(addr, "/").await;
    assert!(
        page.starts_with("HTTP/1.0 200") || page.starts_with("HTTP/1.1 200"),
        "{page}"
    );
    assert!(page.contains("ws://127.0.0.1:1/ws"), "{page}");
    let missing = get(addr, "/static/missing.css").await;
    assert!(missing.contains(" 404 "), "{missing}");
    health::check(addr, Duration::from_secs(2))
        .await
        .expect("healthy while serving");

    stop.send(()).expect("server still running");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops after the shutdown signal")
        .expect("server task did not panic");
    assert!(health::check(addr, Duration::from_secs(2)).await.is_err());
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_request_is_closed_after_the_header_timeout() {
    let env = [
        ("HUB_URL".to_string(), "ws://127.0.0.1:1/ws".to_string()),
        ("WEB_REQUEST_HEADER_TIMEOUT".to_string(), "1s".to_string()),
    ];
    let settings = Settings::load_from(None, env).expect("settings");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(hub_client_web::run(listener, settings, async {
        let _ = stopped.await;
    }));

    // The server's timer for each connection starts between `before` (before we connect) and
    // `started` (after): "not before 1 s" is measured from the first, "within 1 s + slack" from
    // the second, so neither fails because our own connects were slow.
    let before = std::time::Instant::now();
    // Half a request, then silence; and a connection that sends nothing at all.
    let mut trickle = TcpStream::connect(addr).await.expect("connect");
    trickle
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("write");
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let started = std::time::Instant::now();
    for stream in [&mut trickle, &mut silent] {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("the server closes the connection within 5 s");
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "closed without a response: {read:?}"
        );
    }
    let (at_least, at_most) = (before.elapsed(), started.elapsed());
    assert!(
        at_least >= Duration::from_millis(990),
        "closed after at most {at_least:?}, before the 1 s timeout"
    );
    // 1 s + 2 s of slack for a loaded machine; without the timeout they are never closed.
    assert!(
        at_most < Duration::from_secs(3),
        "closed after at least {at_most:?}, the timeout is 1 s"
    );
    // Whole requests are still served.
    let page = get(addr, "/").await;
    assert!(page.contains(" 200 "), "{page}");
}
