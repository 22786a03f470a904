//! The way back to the team's backend: signed JSON `POST`s over pooled keep-alive connections,
//! bounded in time (`proxy_timeout`) and in number (`proxy_concurrency` in flight per hub: past it
//! a call fails at once instead of queueing behind a slow backend). Every failure — a timeout, a
//! refused connection, a 5xx or any other non-2xx, an answer that is not JSON — is an error the
//! caller turns into a refusal: hooks fail closed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use super::sign::{SIGNATURE_HEADER, Signer, TIMESTAMP_HEADER};

/// The largest answer read from a backend; more is an error (a backend answers with a verdict,
/// not a payload to store).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Room for a typical body before it is serialised (a message's content and who sent it): one
/// allocation instead of the doublings from serde_json's default.
const BODY_CAPACITY: usize = 512;
const SIGNATURE: HeaderName = HeaderName::from_static(SIGNATURE_HEADER);
const TIMESTAMP: HeaderName = HeaderName::from_static(TIMESTAMP_HEADER);
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Why a call to the backend did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("too many backend calls in flight")]
    Busy,
    #[error("the backend did not answer in time")]
    Timeout,
    #[error("the backend could not be reached: {0}")]
    Unreachable(String),
    #[error("the backend answered {0}")]
    Status(StatusCode),
    #[error("the backend's answer is not what was expected: {0}")]
    BadAnswer(String),
}

/// A cloneable handle on the backend client (one pool and one concurrency bound per hub).
#[derive(Debug, Clone)]
pub struct Backend(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    client: Client<HttpConnector, Full<Bytes>>,
    /// `hook_secret`, keyed once (unset: requests go unsigned, which the README warns about).
    signer: Option<Signer>,
    timeout: Duration,
    in_flight: Semaphore,
}

impl Backend {
    /// `secret`: `hook_secret` (unset: requests go unsigned, which the README warns about).
    /// `concurrency` bounds the calls in flight, and so the connections one backend host needs at
    /// once: the pool keeps as many idle, so a burst up to the bound reuses its connections
    /// instead of closing all but a few and opening them again at the next burst.
    pub fn new(secret: Option<SecretString>, timeout: Duration, concurrency: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(concurrency)
            .build(connector);
        Backend(Arc::new(Inner {
            client,
            signer: secret.as_ref().map(Signer::new),
            timeout,
            in_flight: Semaphore::new(concurrency),
        }))
    }

    /// POSTs `body` as JSON to `url` and reads the 2xx answer as `A`.
    pub async fn call<A: DeserializeOwned>(
        &self,
        url: &Uri,
        body: &impl Serialize,
    ) -> Result<A, HookError> {
        let raw = self.post(url, body, self.0.timeout).await?;
        serde_json::from_slice(&raw).map_err(|e| HookError::BadAnswer(e.to_string()))
    }

    /// POSTs `body` as JSON and returns the 2xx answer's bytes, within `timeout`.
    pub async fn post(
        &self,
        url: &Uri,
        body: &impl Serialize,
        timeout: Duration,
    ) -> Result<Bytes, HookError> {
        let _permit = self
            .0
            .in_flight
            .try_acquire()
            .map_err(|_| HookError::Busy)?;
        let request = self.request(url, body)?;
        let exchange = async {
            let response = self
                .0
                .client
                .request(request)
                .await
                .map_err(|e| HookError::Unreachable(e.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                return Err(HookError::Status(status));
            }
            let answer = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| HookError::BadAnswer(e.to_string()))?;
            Ok(answer.to_bytes())
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| HookError::Timeout)?
    }

    /// The signed, stamped `POST` of `body`, its headers built from constants (no name parsed,
    /// no string formatted per request).
    fn request(&self, url: &Uri, body: &impl Serialize) -> Result<Request<Full<Bytes>>, HookError> {
        let mut raw = Vec::with_capacity(BODY_CAPACITY);
        serde_json::to_writer(&mut raw, body).map_err(|e| HookError::BadAnswer(e.to_string()))?;
        let stamp = HeaderValue::from(crate::clock::unix_micros() / 1000);
        let signature = match &self.0.signer {
            Some(signer) => Some(
                HeaderValue::from_maybe_shared(Bytes::from(signer.sign(&raw)))
                    .map_err(|e| HookError::Unreachable(e.to_string()))?,
            ),
            None => None,
        };
        let mut request = Request::new(Full::new(Bytes::from(raw)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = url.clone();
        let headers = request.headers_mut();
        headers.reserve(3);
        headers.insert(header::CONTENT_TYPE, JSON);
        headers.insert(TIMESTAMP, stamp);
        if let Some(signature) = signature {
            headers.insert(SIGNATURE, signature);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::Response;
    use hyper::body::Incoming;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use serde_json::{Value, json};
    use tokio::net::TcpListener;

    use super::*;

    /// What the test backend saw of one request, and the TCP connections it accepted.
    #[derive(Debug, Default)]
    struct Seen {
        connections: AtomicUsize,
        requests: std::sync::Mutex<Vec<(String, String, Vec<u8>)>>,
    }

    /// A real HTTP/1.1 server on a free port answering every request with `answer` after `delay`.
    async fn backend(status: u16, answer: &'static str, delay: Duration) -> (Uri, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url: Uri = format!("http://{}/hook", listener.local_addr().expect("addr"))
            .parse()
            .expect("uri");
        let seen = Arc::new(Seen::default());
        let seen_by_server = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                seen_by_server.connections.fetch_add(1, Ordering::Relaxed);
                let seen = seen_by_server.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let header = |name: &str| {
                            request
                                .headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        let (signature, stamp) =
                            (header(SIGNATURE_HEADER), header(TIMESTAMP_HEADER));
                        let body = request
                            .into_body()
                            .collect()
                            .await
                            .expect("body")
                            .to_bytes();
                        seen.requests
                            .lock()
                            .expect("seen")
                            .push((signature, stamp, body.to_vec()));
                        tokio::time::sleep(delay).await;
                        let response = Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from_static(answer.as_bytes())))
                            .expect("response");
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        (url, seen)
    }

    fn secret() -> SecretString {
        SecretString::from("hook-secret-for-tests")
    }

    #[tokio::test]
    async fn a_call_is_signed_stamped_and_answered_over_one_kept_alive_connection() {
        let (url, seen) = backend(200, r#"{"ok":true}"#, Duration::ZERO).await;
        let hooks = Backend::new(Some(secret()), Duration::from_secs(2), 8);
        for i in 0..3 {
            let answer: Value = hooks.call(&url, &json!({"n": i})).await.expect("answer");
            assert_eq!(answer, json!({"ok": true}));
        }
        assert_eq!(seen.connections.load(Ordering::Relaxed), 1, "pooled");
        let requests = seen.requests.lock().expect("seen");
        let (signature, stamp, body) = &requests[2];
        assert_eq!(body.as_slice(), br#"{"n":2}"#);
        assert_eq!(*signature, crate::hooks::sign::signature(&secret(), body));
        let stamp: u64 = stamp.parse().expect("unix ms");
        let now = crate::clock::unix_micros() / 1000;
        assert!(now.abs_diff(stamp) < 10_000, "{stamp} is not now ({now})");
    }

    #[tokio::test]
    async fn timeouts_errors_and_refusals_fail_closed() {
        let (slow, _) = backend(200, "{}", Duration::from_secs(5)).await;
        let hooks = Backend::new(Some(secret()), Duration::from_millis(200), 8);
        let timed_out = hooks.call::<Value>(&slow, &json!({})).await;
        assert!(
            matches!(timed_out, Err(HookError::Timeout)),
            "{timed_out:?}"
        );
        let (failing, _) = backend(503, "{}", Duration::ZERO).await;
        let status = hooks.call::<Value>(&failing, &json!({})).await;
        assert!(
            matches!(status, Err(HookError::Status(s)) if s == 503),
            "{status:?}"
        );
        let (garbled, _) = backend(200, "not json", Duration::ZERO).await;
        let bad = hooks.call::<Value>(&garbled, &json!({})).await;
        assert!(matches!(bad, Err(HookError::BadAnswer(_))), "{bad:?}");
        let closed: Uri = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            format!("http://{}/", listener.local_addr().expect("addr"))
                .parse()
                .expect("uri")
        };
        let refused = hooks.call::<Value>(&closed, &json!({})).await;
        assert!(
            matches!(refused, Err(HookError::Unreachable(_))),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn past_the_concurrency_bound_a_call_fails_at_once() {
        let (slow, _) = backend(200, "{}", Duration::from_millis(500)).await;
        let hooks = Backend::new(None, Duration::from_secs(2), 2);
        let busy = {
            let (a, b) = (hooks.clone(), hooks.clone());
            let (u1, u2) = (slow.clone(), slow.clone());
            let first = tokio::spawn(async move { a.call::<Value>(&u1, &json!({})).await });
            let second = tokio::spawn(async move { b.call::<Value>(&u2, &json!({})).await });
            tokio::time::sleep(Duration::from_millis(100)).await;
            let started = std::time::Instant::now();
            let third = hooks.call::<Value>(&slow, &json!({})).await;
            let waited = started.elapsed();
            assert!(first.await.expect("first").is_ok());
            assert!(second.await.expect("second").is_ok());
            (third, waited)
        };
        assert!(matches!(busy.0, Err(HookError::Busy)), "{:?}", busy.0);
        assert!(
            busy.1 < Duration::from_millis(100),
            "refused at once, not after {:?}",
            busy.1
        );
    }
}
