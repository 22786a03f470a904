//! `serve`'s request-header timeout, over real sockets on loopback (the one test of it: hub-server
//! and hub-client-web only pass their setting on). A connection that sends half a request, and one
//! that sends nothing at all (slowloris), are closed once `header_timeout` has passed and not
//! before; a whole request is still answered; a connection upgraded to a WebSocket belongs to its
//! handler and outlives the timeout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use warp::Filter;

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// `serve` on a free port with `/` answering "ok" and `/ws` echoing WebSocket messages; it runs
/// until the test ends.
async fn server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let page = warp::path::end().map(|| "ok");
    let echo = warp::path("ws").and(warp::ws()).map(|ws: warp::ws::Ws| {
        ws.on_upgrade(|socket| async {
            let (tx, rx) = socket.split();
            let _ = rx.forward(tx).await;
        })
    });
    let limits = http_accept::Limits {
        header_timeout: HEADER_TIMEOUT,
        max_header_bytes: 16 * 1024,
    };
    tokio::spawn(http_accept::serve(
        listener,
        page.or(echo),
        limits,
        std::sync::Arc::new(http_accept::Everyone),
        std::future::pending(),
    ));
    addr
}

/// The server closes `stream` without answering, within 5 s.
async fn assert_closed_unanswered(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the server closes the connection within 5 s");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed without a response: {read:?}"
    );
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_request_is_closed_after_the_header_timeout() {
    let addr = server().await;
    // Upgraded first, so that it is older than the timeout by the time the others are closed.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("upgrade");

    // The server's timer for each connection starts between `before` (before we connect) and
    // `started` (after): "not before 1 s" is measured from the first, "within 1 s + slack" from
    // the second, so neither fails because our own connects were slow.
    let before = Instant::now();
    // Half a request, then silence; and a connection that sends nothing at all.
    let mut trickle = TcpStream::connect(addr).await.expect("connect");
    trickle
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("write");
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    for stream in [&mut trickle, &mut silent] {
        assert_closed_unanswered(stream).await;
    }
    let (at_least, at_most) = (before.elapsed(), started.elapsed());
    assert!(
        at_least >= HEADER_TIMEOUT - Duration::from_millis(10),
        "closed after at most {at_least:?}, before the {HEADER_TIMEOUT:?} timeout"
    );
    // The timeout + 2 s of slack for a loaded machine; without the timeout they are never closed.
    assert!(
        at_most < HEADER_TIMEOUT + Duration::from_secs(2),
        "closed after at least {at_most:?}, the timeout is {HEADER_TIMEOUT:?}"
    );

    // The WebSocket, older than the timeout by now, still serves.
    ws.send(Message::text("still here")).await.expect("send");
    let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("an echo within 5 s");
    match echoed {
        Some(Ok(Message::Text(text))) => assert_eq!(text.as_str(), "still here"),
        other => panic!("the upgraded connection was cut: {other:?}"),
    }

    // Whole requests are still answered.
    let mut whole = TcpStream::connect(addr).await.expect("connect");
    whole
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), whole.read_to_string(&mut answer))
        .await
        .expect("an answer within 5 s")
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
}
