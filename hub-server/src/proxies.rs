//! The four proxies of one hub behind one handle: their URLs, the one backend client they share
//! (so `proxy_concurrency` bounds them together), and the count of every call by kind and
//! outcome (`realtime_hub_proxy_calls_total`). Each call fails closed: an `Err` is a refusal.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, Uri};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::Patterns;
use crate::config::{AuthMode, ProxyUrls, Settings, comma_list};
use crate::hooks::backend::{Backend, HookError};
use crate::hooks::{connect, publish, rpc, subscribe};
use crate::metrics::Metrics;

/// A cloneable handle on the hub's proxies.
#[derive(Debug, Clone)]
pub struct Proxies(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    backend: Backend,
    urls: ProxyUrls,
    /// `proxy_headers`, parsed; empty unless `auth_mode = proxy` (nothing is posted otherwise).
    headers: Vec<HeaderName>,
    /// The grants of a connect answer without `rooms` (`jwt_default_rooms`).
    default_rooms: Patterns,
    max_message_bytes: usize,
    metrics: Arc<Metrics>,
}

impl Proxies {
    pub fn new(settings: &Settings, metrics: Arc<Metrics>) -> Self {
        let headers = match settings.auth_mode {
            AuthMode::Proxy => comma_list(&settings.proxy_headers)
                .filter_map(|h| HeaderName::try_from(h.to_ascii_lowercase()).ok())
                .collect(),
            _ => Vec::new(),
        };
        Proxies(Arc::new(Inner {
            backend: Backend::new(
                settings.hook_secret.clone(),
                settings.proxy_timeout,
                settings.proxy_concurrency,
            ),
            urls: settings.proxy_urls.clone(),
            headers,
            default_rooms: Patterns::parse_list(&settings.jwt_default_rooms),
            max_message_bytes: settings.max_message_bytes,
            metrics,
        }))
    }

    /// The upgrade's headers the connect proxy is to see (none unless `auth_mode = proxy`).
    pub fn upgrade_headers(&self, upgrade: &HeaderMap) -> connect::Headers {
        connect::allowed_headers(upgrade, &self.0.headers)
    }

    pub fn has_rpc(&self) -> bool {
        self.0.urls.rpc.is_some()
    }

    pub async fn connect(
        &self,
        request: &connect::Request<'_>,
    ) -> Result<connect::Verdict, HookError> {
        let answer = self
            .call::<connect::Answer>("connect", self.0.urls.connect.as_ref(), request)
            .await?;
        let verdict = answer.verdict(&self.0.default_rooms);
        let outcome = match &verdict {
            connect::Verdict::Admit(_) => "allowed",
            connect::Verdict::Refuse(_) => "refused",
        };
        self.0.metrics.proxy_call("connect", outcome);
        Ok(verdict)
    }

    pub async fn subscribe(
        &self,
        request: &subscribe::Request<'_>,
    ) -> Result<subscribe::Verdict, HookError> {
        let answer = self
            .call::<subscribe::Answer>("subscribe", self.0.urls.subscribe.as_ref(), request)
            .await?;
        let verdict = answer.verdict();
        let outcome = match &verdict {
            subscribe::Verdict::Allow => "allowed",
            subscribe::Verdict::Refuse(_) => "refused",
        };
        self.0.metrics.proxy_call("subscribe", outcome);
        Ok(verdict)
    }

    pub async fn publish(
        &self,
        request: &publish::Request<'_>,
    ) -> Result<publish::Verdict, HookError> {
        let answer = self
            .call::<publish::Answer>("publish", self.0.urls.publish.as_ref(), request)
            .await?;
        let verdict = answer.verdict(self.0.max_message_bytes).map_err(|_| {
            self.0.metrics.proxy_call("publish", "bad_answer");
            HookError::BadAnswer("a replaced content that is empty or too long".into())
        })?;
        let outcome = match &verdict {
            publish::Verdict::AsSent => "allowed",
            publish::Verdict::Replace(_) => "replaced",
            publish::Verdict::Refuse(_) => "refused",
        };
        self.0.metrics.proxy_call("publish", outcome);
        Ok(verdict)
    }

    pub async fn rpc(&self, request: &rpc::Request<'_>) -> Result<rpc::Verdict, HookError> {
        let answer = self
            .call::<rpc::Answer>("rpc", self.0.urls.rpc.as_ref(), request)
            .await?;
        let verdict = answer.verdict();
        let outcome = match &verdict {
            rpc::Verdict::Result(_) => "allowed",
            rpc::Verdict::Refuse(_) => "refused",
        };
        self.0.metrics.proxy_call("rpc", outcome);
        Ok(verdict)
    }

    /// One call; a failure is counted here with its cause, and logged without the body.
    async fn call<A: DeserializeOwned>(
        &self,
        kind: &'static str,
        url: Option<&Uri>,
        body: &impl Serialize,
    ) -> Result<A, HookError> {
        let answer = match url {
            Some(url) => self.0.backend.call(url, body).await,
            // Unreachable once the settings are checked; a refusal if it ever happens.
            None => Err(HookError::Unreachable(format!("no proxy_{kind}_url"))),
        };
        answer.inspect_err(|err| {
            let outcome = match err {
                HookError::Busy => "busy",
                HookError::Timeout => "timeout",
                HookError::Unreachable(_) => "unreachable",
                HookError::Status(_) => "status",
                HookError::BadAnswer(_) => "bad_answer",
            };
            self.0.metrics.proxy_call(kind, outcome);
            // Busy is the bound doing its job, counted above; the rest is worth an operator's eye.
            if !matches!(err, HookError::Busy) {
                tracing::warn!(proxy = kind, %err, "backend proxy call failed: refused");
            }
        })
    }
}
