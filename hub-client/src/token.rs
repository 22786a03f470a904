//! The client's token: a fixed string, or a provider (an async function) asked again before the
//! token expires and after the hub refused it (close 4001/4002). One call at a time: a reconnect
//! and a refresh that both need a token share one call. Also reads a JWT's `iat` / `exp` (without
//! verifying it: that is the hub's job) to time the refresh.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// What a token provider's future resolves to.
pub type TokenResult = Result<String, Box<dyn std::error::Error + Send + Sync>>;

type Provider = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = TokenResult> + Send>> + Send + Sync>;

/// How the client proves who it is to a hub in `auth_mode = jwt`: a fixed JWT, or a provider asked
/// for a fresh one before each expires and whenever the hub refused one.
///
/// ```
/// use hub_client::Token;
///
/// let fixed = Token::from("eyJhbGciOi…");
/// let renewed = Token::provider(|| async {
///     // Ask your identity provider here.
///     Ok::<_, std::io::Error>("eyJhbGciOi…".to_owned())
/// });
/// # let _ = (fixed, renewed);
/// ```
#[derive(Clone)]
pub struct Token(Kind);

#[derive(Clone)]
enum Kind {
    Fixed(String),
    Provider(Provider),
}

impl Token {
    /// A token fetched by `provider` each time one is needed: before the current one expires (at
    /// 80 % of its lifetime) and after the hub refused one. Any error it returns is reported as a
    /// [`ClientEvent::Error`](crate::ClientEvent::Error) with code `token`, and the client asks
    /// again later.
    pub fn provider<F, Fut, E>(provider: F) -> Token
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        Token(Kind::Provider(Arc::new(move || {
            let fut = provider();
            Box::pin(async move { fut.await.map_err(Into::into) })
        })))
    }
}

impl From<String> for Token {
    fn from(token: String) -> Self {
        Token(Kind::Fixed(token))
    }
}

impl From<&str> for Token {
    fn from(token: &str) -> Self {
        Token(Kind::Fixed(token.to_owned()))
    }
}

/// Never shows the token itself.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Fixed(_) => f.write_str("Token(fixed, redacted)"),
            Kind::Provider(_) => f.write_str("Token(provider)"),
        }
    }
}

/// A token the provider gave, and when to renew it.
struct Cached {
    token: String,
    /// `None`: nothing says it expires.
    refresh_at: Option<Instant>,
}

/// The driver's side of the token: when one can be used as it is, when to ask the provider, and
/// the answer of the call in flight.
pub(crate) struct TokenSource {
    kind: Option<Kind>,
    cached: Option<Cached>,
    pending: Option<oneshot::Receiver<Result<String, String>>>,
    call_timeout: Duration,
}

impl TokenSource {
    /// `call_timeout`: a provider that has not answered by then counts as failed.
    pub(crate) fn new(token: Option<Token>, call_timeout: Duration) -> Self {
        TokenSource {
            kind: token.map(|t| t.0),
            cached: None,
            pending: None,
            call_timeout,
        }
    }

    /// Whether the client authenticates at all.
    pub(crate) fn present(&self) -> bool {
        self.kind.is_some()
    }

    /// Whether a refused token can be replaced (a provider) or not (a fixed string).
    pub(crate) fn renewable(&self) -> bool {
        matches!(self.kind, Some(Kind::Provider(_)))
    }

    /// A token usable now without asking the provider: the fixed one, or the provider's last one
    /// while it is not due for renewal (and not `fresh`, asked after the hub refused it).
    pub(crate) fn ready(&self, fresh: bool, now: Instant) -> Option<String> {
        match self.kind.as_ref()? {
            Kind::Fixed(token) => Some(token.clone()),
            Kind::Provider(_) => {
                let cached = self.cached.as_ref().filter(|_| !fresh)?;
                match cached.refresh_at {
                    Some(at) if now >= at => None,
                    _ => Some(cached.token.clone()),
                }
            }
        }
    }

    /// Starts a provider call unless one is in flight.
    pub(crate) fn fetch(&mut self) {
        let Some(Kind::Provider(provider)) = &self.kind else {
            return;
        };
        if self.pending.is_some() {
            return;
        }
        let (tx, rx) = oneshot::channel();
        let call = provider();
        let limit = self.call_timeout;
        tokio::spawn(async move {
            let answer = match tokio::time::timeout(limit, call).await {
                Ok(Ok(token)) if !token.is_empty() => Ok(token),
                Ok(Ok(_)) => Err("the token provider returned an empty token".to_owned()),
                Ok(Err(e)) => Err(format!("the token provider failed: {e}")),
                Err(_) => Err(format!(
                    "the token provider did not answer within {}",
                    humanize(limit)
                )),
            };
            let _ = tx.send(answer);
        });
        self.pending = Some(rx);
    }

    pub(crate) fn fetching(&self) -> bool {
        self.pending.is_some()
    }

    /// The answer of the call in flight (pending for ever when there is none: the driver polls
    /// this only while [`TokenSource::fetching`]).
    pub(crate) async fn answer(&mut self) -> Result<String, String> {
        let Some(rx) = self.pending.as_mut() else {
            return std::future::pending().await;
        };
        let answer = rx
            .await
            .unwrap_or_else(|_| Err("the token provider panicked".to_owned()));
        self.pending = None;
        if let Ok(token) = &answer {
            self.cached = Some(Cached {
                token: token.clone(),
                refresh_at: refresh_delay(token, unix_now(), None).map(|d| Instant::now() + d),
            });
        }
        answer
    }

    /// The hub refused the cached token: the next [`TokenSource::ready`] asks the provider again.
    pub(crate) fn invalidate(&mut self) {
        self.cached = None;
    }

    /// When the provider's last token is due for renewal; `None` for a fixed token or one that
    /// does not say it expires. `hub_exp`, the `exp` the hub answered, stands in for a token whose
    /// own `exp` cannot be read.
    pub(crate) fn due_at(&mut self, hub_exp: Option<u64>) -> Option<Instant> {
        if !self.renewable() {
            return None;
        }
        let cached = self.cached.as_mut()?;
        if cached.refresh_at.is_none() && hub_exp.is_some() {
            cached.refresh_at =
                refresh_delay(&cached.token, unix_now(), hub_exp).map(|d| Instant::now() + d);
        }
        cached.refresh_at
    }
}

/// Share of a token's lifetime after which it is renewed.
const REFRESH_SHARE: f64 = 0.8;
/// Never refresh sooner than this after getting a token (a provider returning stale tokens would spin).
const MIN_REFRESH: Duration = Duration::from_secs(1);

/// How long after getting `token` (at `now`, Unix seconds) to renew it. A token lasting L seconds
/// (exp − iat − 1, read from the token itself so that a skewed local clock does not matter; the
/// second for `iat`'s rounding down) is renewed after 0.8·L; without `iat`, after 0.8 of the time
/// left until `exp` by the local clock. `None` when nothing says the token expires.
pub(crate) fn refresh_delay(token: &str, now: f64, hub_exp: Option<u64>) -> Option<Duration> {
    let claims = decode_claims(token);
    let own_exp = claims.as_ref().and_then(|c| number(c, "exp"));
    let exp = own_exp.or(hub_exp.map(|e| e as f64))?;
    let iat = claims.as_ref().and_then(|c| number(c, "iat"));
    let lifetime = match (own_exp, iat) {
        (Some(exp), Some(iat)) if exp > iat => exp - iat - 1.0,
        _ => exp - now,
    };
    let delay = (lifetime * REFRESH_SHARE).max(0.0);
    Some(Duration::from_secs_f64(delay.min(1e9)).max(MIN_REFRESH))
}

fn number(claims: &serde_json::Value, name: &str) -> Option<f64> {
    claims.get(name)?.as_f64()
}

/// The payload of a JWT, or `None` when `token` is not one.
pub(crate) fn decode_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .filter(serde_json::Value::is_object)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn humanize(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.sig",
            part(serde_json::json!({"alg": "HS256"})),
            part(claims)
        )
    }

    #[test]
    fn renews_at_four_fifths_of_the_lifetime_the_token_states() {
        let token = jwt(serde_json::json!({"sub": "u", "iat": 1000, "exp": 1011}));
        // The local clock is far off: it does not matter when iat is there.
        let d = refresh_delay(&token, 5_000_000.0, None).expect("expires");
        assert_eq!(d, Duration::from_secs(8));
    }

    #[test]
    fn without_iat_the_time_left_counts() {
        let token = jwt(serde_json::json!({"sub": "u", "exp": 1100}));
        assert_eq!(
            refresh_delay(&token, 1000.0, None),
            Some(Duration::from_secs(80))
        );
        // Already expired: not sooner than a second.
        assert_eq!(refresh_delay(&token, 2000.0, None), Some(MIN_REFRESH));
    }

    #[test]
    fn an_opaque_token_uses_the_hubs_exp_or_never_expires() {
        assert_eq!(refresh_delay("opaque", 1000.0, None), None);
        assert_eq!(
            refresh_delay("opaque", 1000.0, Some(1010)),
            Some(Duration::from_secs(8))
        );
    }

    #[test]
    fn claims_of_a_padded_or_broken_token() {
        assert_eq!(decode_claims("a.b"), None);
        assert_eq!(decode_claims("nodots"), None);
        let token = jwt(serde_json::json!({"exp": 5}));
        let padded = {
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            let pad = (4 - parts[1].len() % 4) % 4;
            parts[1].push_str(&"=".repeat(pad));
            parts.join(".")
        };
        assert_eq!(
            decode_claims(&padded).and_then(|c| c["exp"].as_u64()),
            Some(5)
        );
    }

    #[test]
    fn debug_never_shows_the_token() {
        let shown = format!("{:?}", Token::from("secret-token-value"));
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[tokio::test]
    async fn a_provider_is_called_once_for_concurrent_needs_and_cached_until_due() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let token = jwt(serde_json::json!({"sub": "u", "iat": 1000, "exp": 1100}));
        let given = token.clone();
        let mut source = TokenSource::new(
            Some(Token::provider(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let t = given.clone();
                async move { Ok::<_, std::io::Error>(t) }
            })),
            Duration::from_secs(5),
        );
        assert!(source.renewable());
        assert_eq!(source.ready(false, Instant::now()), None);
        source.fetch();
        source.fetch();
        assert_eq!(source.answer().await.as_deref(), Ok(token.as_str()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(source.ready(false, Instant::now()), Some(token.clone()));
        assert_eq!(source.ready(true, Instant::now()), None);
        assert!(source.due_at(None).is_some());
        source.invalidate();
        assert_eq!(source.ready(false, Instant::now()), None);
    }

    #[tokio::test]
    async fn a_failing_provider_says_why() {
        let mut source = TokenSource::new(
            Some(Token::provider(|| async {
                Err::<String, _>(std::io::Error::other("idp down"))
            })),
            Duration::from_secs(5),
        );
        source.fetch();
        let err = source.answer().await.expect_err("fails");
        assert!(err.contains("idp down"), "{err}");
        assert!(!source.fetching());
    }
}
