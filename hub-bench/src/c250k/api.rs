//! A keep-alive HTTP/1.1 client for the hubs' server API, just enough for `POST /api/publish` and
//! `POST /api/broadcast` at ten thousand requests a second from one thread (and a `GET` or two): one request at a time
//! per connection, bodies framed by `Content-Length` (or chunked), the key sent as a bearer token.

use std::io::ErrorKind;
use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{addr}: {what}: {kind}")]
    Io {
        addr: String,
        what: &'static str,
        kind: ErrorKind,
    },
    #[error("{addr}: bad answer: {0}", addr = .1)]
    Bad(String, String),
}

/// Largest answer accepted (the API's are a few hundred bytes).
const MAX_ANSWER: usize = 64 * 1024;

pub struct ApiConn {
    addr: String,
    key: Rc<str>,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for ApiConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ApiConn")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// An answer: its status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl ApiConn {
    pub fn new(addr: &str, key: Rc<str>) -> Self {
        ApiConn {
            addr: addr.to_owned(),
            key,
            stream: None,
            buf: Vec::with_capacity(1024),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `POST path` with a JSON body; connects (again) when needed. A failed exchange drops the
    /// connection: the next one starts on a fresh one.
    pub async fn post(&mut self, path: &str, body: &str) -> Result<Reply, ApiError> {
        self.request("POST", path, body).await
    }

    pub async fn get(&mut self, path: &str) -> Result<Reply, ApiError> {
        self.request("GET", path, "").await
    }

    async fn request(&mut self, method: &str, path: &str, body: &str) -> Result<Reply, ApiError> {
        let reused = self.stream.is_some();
        let mut result = self.exchange(method, path, body).await;
        if result.is_err() {
            self.stream = None;
        }
        // A kept-alive connection the hub closed while it sat idle (its keep-alive timeout): the
        // request never reached it (nothing came back, not a byte), so it goes once more on a
        // fresh connection — as HTTP clients do — instead of failing the run.
        if reused && self.buf.is_empty() && result.as_ref().is_err_and(closed_idle) {
            result = self.exchange(method, path, body).await;
            if result.is_err() {
                self.stream = None;
            }
        }
        result
    }

    async fn exchange(&mut self, method: &str, path: &str, body: &str) -> Result<Reply, ApiError> {
        self.buf.clear();
        let io = |what: &'static str, addr: &str| {
            let addr = addr.to_owned();
            move |e: std::io::Error| ApiError::Io {
                addr,
                what,
                kind: e.kind(),
            }
        };
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr)
                .await
                .map_err(io("connect", &self.addr))?;
            let _ = s.set_nodelay(true);
            self.stream = Some(s);
        }
        let stream = self.stream.as_mut().expect("just set");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            self.key,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(io("write", &self.addr))?;
        loop {
            if let Some((reply, close)) =
                parse_reply(&self.buf).map_err(|e| ApiError::Bad(e, self.addr.clone()))?
            {
                if close {
                    self.stream = None;
                }
                return Ok(reply);
            }
            if self.buf.len() > MAX_ANSWER {
                return Err(ApiError::Bad("answer too long".into(), self.addr.clone()));
            }
            let n = stream
                .read_buf(&mut self.buf)
                .await
                .map_err(io("read", &self.addr))?;
            if n == 0 {
                return Err(ApiError::Io {
                    addr: self.addr.clone(),
                    what: "read",
                    kind: ErrorKind::UnexpectedEof,
                });
            }
        }
    }
}

/// The error of a connection the other side had closed before the request.
fn closed_idle(err: &ApiError) -> bool {
    matches!(
        err,
        ApiError::Io { kind, .. } if matches!(
            kind,
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        )
    )
}

/// A whole answer in `buf`, and whether the server will close the connection; `None` while
/// incomplete.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, bool)>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "header not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("status line {:?}", head.lines().next()))?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let rest = &buf[end + 4..];
    let body = if chunked {
        match dechunk(rest)? {
            Some(body) => body,
            None => return Ok(None),
        }
    } else {
        let length = length.unwrap_or(0);
        if rest.len() < length {
            return Ok(None);
        }
        rest[..length].to_vec()
    };
    Ok(Some((
        Reply {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        },
        close,
    )))
}

/// A chunked body, once its last chunk is in.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size = std::str::from_utf8(&rest[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .ok_or("bad chunk size")?;
        let data = &rest[eol + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[..size]);
        rest = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_by_length_chunks_and_close() {
        let full = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}";
        let (r, close) = parse_reply(full).expect("valid").expect("whole");
        assert_eq!(
            (r.status, r.body.as_str(), close),
            (200, "{\"a\":1}", false)
        );
        assert_eq!(parse_reply(&full[..full.len() - 1]), Ok(None));
        assert_eq!(parse_reply(&full[..10]), Ok(None));
        let chunked = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (r, close) = parse_reply(chunked).expect("valid").expect("whole");
        assert_eq!((r.status, r.body.as_str(), close), (503, "abcde", true));
        assert_eq!(parse_reply(&chunked[..chunked.len() - 5]), Ok(None));
        assert!(parse_reply(b"nonsense\r\n\r\n").is_err());
    }

    #[tokio::test]
    async fn posts_and_keeps_the_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut seen = Vec::new();
            for n in 0..2 {
                seen.push(read_request(&mut s).await);
                answer_id(&mut s, n).await;
            }
            seen
        });
        let mut c = ApiConn::new(&addr, Rc::from("k-0123456789abcdef"));
        for n in 0..2 {
            let r = c
                .post("/api/publish", &format!("{{\"n\":{n}}}"))
                .await
                .expect("answer");
            assert_eq!((r.status, r.body), (200, format!("{{\"id\":{n}}}")));
        }
        let seen = server.await.expect("server");
        assert!(seen[0].starts_with("POST /api/publish HTTP/1.1\r\n"));
        assert!(seen[1].contains("\r\nAuthorization: Bearer k-0123456789abcdef\r\n"));
        assert!(!format!("{c:?}").contains("k-0123"));
    }

    /// One request with a JSON object body (the tests' bodies are `{"n":…}`), as text.
    async fn read_request(s: &mut TcpStream) -> String {
        let mut req = Vec::new();
        while !String::from_utf8_lossy(&req).contains("{\"n\":") || !req.ends_with(b"}") {
            let mut b = [0u8; 512];
            let k = s.read(&mut b).await.expect("read");
            assert!(k > 0, "client closed");
            req.extend_from_slice(&b[..k]);
        }
        String::from_utf8_lossy(&req).into_owned()
    }

    /// Answers `200 {"id":n}`, keeping the connection.
    async fn answer_id(s: &mut TcpStream, n: usize) {
        let body = format!("{{\"id\":{n}}}");
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(answer.as_bytes()).await.expect("write");
    }

    /// Answers one request on each accepted connection, then closes it without a word (a
    /// keep-alive timeout); returns how many connections it took.
    async fn one_answer_per_connection(listener: tokio::net::TcpListener, conns: usize) -> usize {
        for n in 0..conns {
            let (mut s, _) = listener.accept().await.expect("accept");
            read_request(&mut s).await;
            answer_id(&mut s, n).await;
        }
        conns
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced_and_the_request_goes_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = tokio::spawn(one_answer_per_connection(listener, 2));
        let mut c = ApiConn::new(&addr, Rc::from("k-0123456789abcdef"));
        let first = c.post("/api/publish", "{\"n\":0}").await.expect("first");
        assert_eq!(first.body, "{\"id\":0}");
        // The server has dropped that connection by now; the client does not know it yet.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let second = c.post("/api/publish", "{\"n\":1}").await.expect("second");
        assert_eq!(second.body, "{\"id\":1}", "answered on a new connection");
        assert_eq!(server.await.expect("server"), 2);
    }
}
