//! One HTTP/1.1 exchange with the server API over a fresh connection: bounded in time and in the
//! size of the answer, the key sent as a sensitive header. Plain HTTP only: the API listener is
//! internal (loopback, a private network), never on the public side of a TLS proxy.

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::error::ApiError;

/// Largest answer read (a history of 1000 messages of 64 KiB each would be more: ask for fewer).
pub(crate) const MAX_BODY_BYTES: usize = 16 << 20;

/// Where the API listens: `http://host:port`, and a path prefix if the URL had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Base {
    pub authority: String,
    pub prefix: String,
}

impl Base {
    pub(crate) fn parse(url: &str) -> Result<Base, ApiError> {
        let bad = |why: &str| ApiError::local(format!("bad API URL {url:?}: {why}"));
        if url.starts_with("https://") {
            return Err(bad(
                "https is not supported: the server API listener is plain HTTP and internal",
            ));
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("it must start with http://"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("it needs a host (and no user info)"));
        }
        Ok(Base {
            authority: authority.to_owned(),
            prefix: path.trim_end_matches('/').to_owned(),
        })
    }

    /// `host:port` to connect to (port 80 when the URL names none).
    fn address(&self) -> String {
        let has_port = match self.authority.rfind(':') {
            Some(i) => !self.authority[i..].contains(']'),
            None => false,
        };
        if has_port {
            self.authority.clone()
        } else {
            format!("{}:80", self.authority)
        }
    }
}

/// The status and body of an answer.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// `method path` with `key`, and `body` as JSON when given.
pub(crate) async fn exchange(
    base: &Base,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Answer, ApiError> {
    tokio::time::timeout(timeout, send(base, key, method, path, body))
        .await
        .map_err(|_| {
            ApiError::local(format!(
                "no answer from {} within {} ms",
                base.authority,
                timeout.as_millis()
            ))
        })?
}

async fn send(
    base: &Base,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<Answer, ApiError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::local(format!("cannot reach the API at {}: {e}", base.authority))
    };
    let stream = TcpStream::connect(base.address())
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(&e))?;
    // The connection task ends with the exchange: the request asks for close.
    let driver = tokio::spawn(conn);
    let mut bearer = HeaderValue::from_str(&format!("Bearer {key}"))
        .map_err(|_| ApiError::local("the API key is not a valid header value"))?;
    bearer.set_sensitive(true);
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{}{path}", base.prefix))
        .header(HOST, &base.authority)
        .header(AUTHORIZATION, bearer)
        .header(CONNECTION, "close");
    if body.is_some() {
        request = request.header(CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| ApiError::local(format!("bad request: {e}")))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(&e))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    ApiError::local(format!("the answer is larger than {MAX_BODY_BYTES} bytes"))
                } else {
                    unreachable(&e)
                }
            })?
            .to_bytes();
        Ok(Answer { status, body })
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_the_api() {
        let b = Base::parse("http://127.0.0.1:8090").expect("plain");
        assert_eq!(
            (b.address().as_str(), b.prefix.as_str()),
            ("127.0.0.1:8090", "")
        );
        let b = Base::parse("http://hub.internal/hub1/").expect("prefix");
        assert_eq!(
            (b.address().as_str(), b.prefix.as_str()),
            ("hub.internal:80", "/hub1")
        );
        let b = Base::parse("http://[::1]:8090").expect("v6");
        assert_eq!(b.address(), "[::1]:8090");
        assert!(Base::parse("https://x").is_err());
        assert!(Base::parse("ws://x").is_err());
        assert!(Base::parse("http://").is_err());
    }
}
