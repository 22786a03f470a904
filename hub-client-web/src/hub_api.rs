//! The client side of the hubs' server API, for the status page: one `GET` at a time, with the
//! key, bounded in time and in size. Plain HTTP only: the API listener is internal (compose network,
//! loopback), and the key is never sent anywhere else than the configured `api_urls`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use humantime::format_duration;
use hyper_util::rt::TokioIo;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;
use warp::http::header::{AUTHORIZATION, HOST};
use warp::http::{HeaderValue, Request};

/// Largest answer read: `/metrics` of a busy hub is a few tens of KiB.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Why a request did not give a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Nothing listens there, or the connection broke: the hub (or its API) is down.
    #[error("no answer: {0}")]
    Unreachable(String),
    #[error("no answer within {}", format_duration(*.0))]
    Timeout(Duration),
    /// An HTTP answer other than 200 (401: wrong key; 503: the hub cannot reach Redis).
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("the answer is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
}

/// `Debug` shows the key redacted ([`SecretString`]).
#[derive(Debug, Clone)]
pub struct HubApi {
    key: SecretString,
    timeout: Duration,
}

impl HubApi {
    pub fn new(key: SecretString, timeout: Duration) -> Self {
        HubApi { key, timeout }
    }

    /// `GET <base><path>`; `base` is `http://host:port` (checked in `config`).
    pub async fn get(&self, base: &str, path: &str) -> Result<Bytes, FetchError> {
        tokio::time::timeout(self.timeout, self.exchange(base, path))
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))?
    }

    async fn exchange(&self, base: &str, path: &str) -> Result<Bytes, FetchError> {
        let broken = |e: &dyn std::fmt::Display| FetchError::Unreachable(e.to_string());
        let authority = base.strip_prefix("http://").unwrap_or(base);
        let addr = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let stream = TcpStream::connect(&addr).await.map_err(|e| broken(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| broken(&e))?;
        // The connection task ends with the exchange: the request asks for close.
        let driver = tokio::spawn(conn);
        let mut bearer =
            HeaderValue::from_bytes(&[b"Bearer ", self.key.expose_secret().as_bytes()].concat())
                .map_err(|_| FetchError::Unreachable("the API key is not a valid header".into()))?;
        bearer.set_sensitive(true);
        let request = Request::get(path)
            .header(HOST, authority)
            .header(AUTHORIZATION, bearer)
            .header("connection", "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| broken(&e))?;
        let result = async {
            let response = sender.send_request(request).await.map_err(|e| broken(&e))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        FetchError::TooLarge
                    } else {
                        FetchError::Unreachable(e.to_string())
                    }
                })?
                .to_bytes();
            if status == 200 {
                Ok(body)
            } else {
                Err(FetchError::Status(status))
            }
        }
        .await;
        driver.abort();
        result
    }
}
