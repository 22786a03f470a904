//! `serve`'s other bounds, over real sockets on loopback: a request head longer than
//! `max_header_bytes` is answered 431 and closed without being read to its end, and a connection
//! the [`Admission`] refuses gets a 503 at once and is closed, while admitted ones keep their
//! ticket until they end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_accept::{Admission, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use warp::Filter;

/// At most `max` connections at once: the ticket gives its place back when the last clone goes.
struct AtMost {
    held: Arc<AtomicUsize>,
    max: usize,
}

struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission for AtMost {
    type Ticket = Arc<Place>;
    fn admit(&self) -> Option<Arc<Place>> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Arc::new(Place(self.held.clone())))
    }
}

async fn server(max: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let held = Arc::new(AtomicUsize::new(0));
    let admission = Arc::new(AtMost {
        held: held.clone(),
        max,
    });
    let limits = Limits {
        header_timeout: Duration::from_secs(10),
        max_header_bytes: 16 * 1024,
    };
    let page = warp::path::end().map(|| "ok");
    tokio::spawn(http_accept::serve(
        listener,
        page,
        limits,
        admission,
        std::future::pending(),
    ));
    (addr, held)
}

/// What the server says before it closes, within 5 s.
async fn answer(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server closes the connection within 5 s");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_head_past_max_header_bytes_is_refused_with_431_before_its_end() {
    let (addr, _) = server(10).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        .await
        .expect("write");
    // 100 KiB of a header line that never ends: the server stops reading long before.
    let line = vec![b'a'; 100 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&line)).await;
    let said = answer(&mut stream).await;
    assert!(said.starts_with("HTTP/1.1 431"), "{said:?}");
    // A normal request on a new connection is still served.
    let mut ok = TcpStream::connect(addr).await.expect("connect");
    ok.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    assert!(answer(&mut ok).await.ends_with("ok"));
}

#[tokio::test]
async fn connections_past_the_admission_get_503_and_a_closed_one_gives_its_place_back() {
    let (addr, held) = server(2).await;
    // Two connections in their handshake (nothing sent yet) hold both places.
    let first = TcpStream::connect(addr).await.expect("connect");
    let _second = TcpStream::connect(addr).await.expect("connect");
    let mut third = TcpStream::connect(addr).await.expect("connect");
    let said = answer(&mut third).await;
    assert!(said.starts_with("HTTP/1.1 503"), "{said:?}");
    assert!(
        said.ends_with("server at its connection limit\n"),
        "{said:?}"
    );
    assert_eq!(held.load(Ordering::Acquire), 2);
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while held.load(Ordering::Acquire) > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut fourth = TcpStream::connect(addr).await.expect("connect");
    fourth
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    assert!(answer(&mut fourth).await.ends_with("ok"));
}
