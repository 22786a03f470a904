//! `hub-bench backend`: the cheapest backend a hub's hooks can call — a plain HTTP/1.1 listener
//! that answers every `POST` with `200 {}` at once (publish as sent, allow the join) over
//! keep-alive connections, so a proxy benchmark measures the hub's side of a backend call, not a
//! backend's work. It neither checks the signature nor reads the JSON: a benchmark stand-in,
//! never a model of a real backend.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `hub-bench backend`.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendConfig {
    /// Where to listen (`127.0.0.1:0` picks a free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
}

/// The one answer: a JSON `{}` the hub reads as "go ahead".
const ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
/// A request head larger than this is not a hook call: the connection is closed.
const MAX_HEAD: usize = 16 * 1024;
/// A body larger than this is refused the same way (the hub's bodies are a message or less).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Room made in the buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

/// Binds, prints the bound address on stdout (`listening <addr>`), then serves until killed,
/// printing the requests answered each second they changed on stderr.
pub async fn run(cfg: &BackendConfig) -> std::io::Result<()> {
    let listener = TcpListener::bind(cfg.listen).await?;
    println!("listening {}", listener.local_addr()?);
    let answered = Arc::new(AtomicU64::new(0));
    tokio::spawn(report(Arc::clone(&answered)));
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let answered = Arc::clone(&answered);
        tokio::spawn(async move {
            // A connection that breaks or sends something else just ends; the hub counts the
            // failure on its side (`unreachable` / `bad_answer`).
            if let Err(e) = serve(stream, &answered).await {
                eprintln!("backend: connection ended: {e}");
            }
        });
    }
}

async fn report(answered: Arc<AtomicU64>) {
    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = answered.load(Ordering::Relaxed);
        if now != last {
            eprintln!("backend: {now} requests answered ({}/s)", now - last);
            last = now;
        }
    }
}

/// One keep-alive connection: request after request, each answered once its body is read. What
/// one read brings is answered in one write (a client that pipelines gets its answers together),
/// and bytes are read straight into the buffer they are parsed from.
async fn serve(mut stream: TcpStream, answered: &AtomicU64) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let mut answers = Vec::with_capacity(ANSWER.len());
    loop {
        let mut used = 0;
        while let Some(len) = complete_request(&buf[used..])? {
            used += len;
            answers.extend_from_slice(ANSWER);
        }
        if used > 0 {
            buf.drain(..used);
            stream.write_all(&answers).await?;
            answered.fetch_add((answers.len() / ANSWER.len()) as u64, Ordering::Relaxed);
            answers.clear();
        }
        buf.reserve(READ_CHUNK);
        if stream.read_buf(&mut buf).await? == 0 {
            return match buf.is_empty() {
                // Closed between requests: the normal end of a pooled connection.
                true => Ok(()),
                false => Err(std::io::Error::other("closed within a request")),
            };
        }
    }
}

/// The length of the first request in `buf` (head and body) once it is all there.
fn complete_request(buf: &[u8]) -> std::io::Result<Option<usize>> {
    let Some(head_end) = find_head_end(buf) else {
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too large"));
        }
        return Ok(None);
    };
    let body_len = content_length(&buf[..head_end])?;
    if body_len > MAX_BODY {
        return Err(std::io::Error::other("request body too large"));
    }
    let total = head_end + body_len;
    Ok((buf.len() >= total).then_some(total))
}

/// The length of the head including its blank line, once it is all in `buf`.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The head's `content-length` (0 without one). A chunked body is an error: the hub's client
/// sends bodies of known length.
fn content_length(head: &[u8]) -> std::io::Result<usize> {
    let head = std::str::from_utf8(head).map_err(std::io::Error::other)?;
    let mut length = 0;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(std::io::Error::other("chunked request bodies are not read"));
        }
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().map_err(std::io::Error::other)?;
        }
    }
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_and_length() {
        let req = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"room\":\"a\"}";
        let end = find_head_end(req).expect("a full head");
        assert_eq!(content_length(&req[..end]).expect("valid"), 12);
        assert_eq!(req.len() - end, 12);
        assert!(find_head_end(b"POST / HTTP/1.1\r\nHost: x\r\n").is_none());
        assert!(content_length(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(content_length(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
    }

    /// Two requests on one connection, the second split across writes: two answers, in order.
    #[tokio::test]
    async fn answers_each_request_on_a_keep_alive_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let answered = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&answered);
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accept");
            serve(s, &counter).await
        });
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"POST /a HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}POST /b HTTP/1.1\r\ncont")
            .await
            .expect("write");
        c.write_all(b"ent-length: 3\r\n\r\n{} ")
            .await
            .expect("write");
        let mut got = vec![0u8; ANSWER.len() * 2];
        c.read_exact(&mut got).await.expect("two answers");
        assert_eq!(&got[..ANSWER.len()], ANSWER);
        assert_eq!(&got[ANSWER.len()..], ANSWER);
        assert_eq!(answered.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_request_is_complete_only_with_its_whole_body() {
        let two = b"POST /a HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}POST /b HTTP/1.1\r\n";
        let first = complete_request(two).expect("valid").expect("complete");
        assert_eq!(&two[first - 2..first], b"{}");
        assert_eq!(complete_request(&two[first..]).expect("valid"), None);
        assert_eq!(complete_request(&two[..first - 1]).expect("valid"), None);
        let huge = vec![b'x'; MAX_HEAD + 1];
        assert!(complete_request(&huge).is_err());
    }
}
