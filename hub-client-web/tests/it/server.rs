//! The real server on a free port: serves the page and /health, answers the healthcheck, stops on signal.
//! (Its request-header timeout is `http-accept`'s, tested there.)

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
