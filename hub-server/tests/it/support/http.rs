//! A minimal HTTP/1.0 client over a raw TCP stream: enough for /health and the server API without
//! an HTTP client crate.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Status code, headers and body of one HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
    /// Header lines as they came, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Value::Null` when it is not JSON, so assertions show what came instead).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// GET `path` on 127.0.0.1:`port`.
pub async fn get(port: u16, path: &str) -> std::io::Result<Response> {
    exchange(port, "GET", path, &[], None, Duration::from_secs(3)).await
}

/// One HTTP/1.0 request to 127.0.0.1:`port` with extra `headers` and an optional body (sent with
/// its Content-Length). HTTP/1.0 keeps the reply un-chunked and closes the connection, so reading
/// to EOF yields the whole response. A server that answers before reading the whole body (413)
/// may reset the connection after its answer: what was read by then is the response.
pub async fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    exchange(port, method, path, headers, body, Duration::from_secs(10)).await
}

async fn exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    within: Duration,
) -> std::io::Result<Response> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut head = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut raw_request = head.into_bytes();
        raw_request.extend_from_slice(body.unwrap_or_default());
        let (mut reader, mut writer) = stream.split();
        let write = async {
            // The server may answer and close before taking it all (413): not an error here.
            let _ = writer.write_all(&raw_request).await;
        };
        let mut raw = Vec::new();
        let read = reader.read_to_end(&mut raw);
        let (_, read) = tokio::join!(write, read);
        match read {
            Err(_) if !raw.is_empty() => {}
            Err(err) => return Err(err),
            Ok(_) => {}
        }
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(within, exchange).await.map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::TimedOut, "HTTP request timed out")
    })??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad HTTP response: {head:?}"),
            )
        })?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        body: body.to_owned(),
        headers,
    })
}
