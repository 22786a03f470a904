//! Settings: built-in defaults → optional TOML file (`--config PATH`) → environment (`HUB_*`, `REDIS_URL`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
pub use service_kit::ConfigError;
use service_kit::{Layers, LogFormat};

use crate::namespace::{Globals, Namespaces, RawNamespaces};

/// Every tunable of a hub. Field names are the TOML keys; `HUB_<FIELD>` is the environment variable.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Address the HTTP/WebSocket server binds.
    pub listen: SocketAddr,
    /// Human-readable hub name shown to clients. Not an identity: see `Hub::instance_id`.
    pub name: String,
    /// `redis://[:password@]host:port[/db]`; unset runs the hub standalone. A secret: the
    /// password is inside.
    pub redis_url: Option<SecretString>,
    /// Comma-separated `redis://` URLs of Redis Cluster nodes (some or all: the rest are found),
    /// instead of `redis_url`: rooms then use sharded pub/sub (see `bridge::redis_link`). A
    /// secret, as `redis_url` is.
    pub redis_cluster_nodes: Option<SecretString>,
    /// Prefix of every Redis key and channel, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// Comma-separated exact origins, `*` for any; unset allows loopback origins only.
    pub allowed_origins: Option<String>,
    pub max_message_bytes: usize,
    /// permessage-deflate (RFC 7692) for clients that offer it, always without context takeover.
    pub compression: bool,
    /// Frames shorter than this go uncompressed (a short frame shrinks little without a window
    /// kept between messages).
    pub compression_min_bytes: usize,
    pub max_connections: usize,
    pub max_rooms_per_client: usize,
    /// Frames queued for one client before it is closed as a slow consumer.
    pub send_queue: usize,
    /// Bytes queued for one client before it is closed as a slow consumer (a single frame into
    /// an empty queue always goes).
    pub send_queue_bytes: usize,
    pub rate_limit_per_sec: u32,
    pub rate_limit_burst: u32,
    /// Frames refused for the rate limit before the connection is closed.
    pub rate_limit_max_rejects: u32,
    /// A connection must deliver its HTTP request headers (the WebSocket upgrade included) within
    /// this time, or it is closed: idle or trickling sockets cannot pile up (slowloris).
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// Connections of the client listener still in their HTTP handshake, at most: each may hold
    /// up to `max_header_bytes`; past it a new connection is refused with 503 at once.
    pub max_handshakes: usize,
    /// A request head larger than this is refused with 431 (it is what a handshake may hold).
    pub max_header_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// A client silent (no frame, no pong) for this long is dropped.
    #[serde(with = "humantime_serde")]
    pub pong_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// An SSE session id (`POST /sse/session`) not opened by `GET /sse` within this is gone.
    #[serde(with = "humantime_serde")]
    pub sse_session_ttl: Duration,
    /// A user's last leave is announced this long after it, unless they come back meanwhile.
    #[serde(with = "humantime_serde")]
    pub presence_leave_delay: Duration,
    /// Rooms with more users get no `presence_diff` events (they can still ask).
    pub presence_events_max: usize,
    /// How often the hub writes its heartbeat (and looks for dead hubs).
    #[serde(with = "humantime_serde")]
    pub hub_heartbeat: Duration,
    /// A hub silent this long is dead: the others remove it and its users from presence.
    #[serde(with = "humantime_serde")]
    pub hub_timeout: Duration,
    /// Cross-hub messages held in order while Redis is unreachable.
    pub bridge_buffer: usize,
    /// Messages from Redis waiting for this hub's fan-out, at most; past it (or past
    /// `inbound_buffer_bytes`) they are shed and counted, never queued without bound.
    pub inbound_buffer: usize,
    pub inbound_buffer_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub redis_ping_interval: Duration,
    /// Longest wait for any Redis reply before the connection is declared stalled.
    #[serde(with = "humantime_serde")]
    pub redis_timeout: Duration,
    /// Cap of the jittered exponential reconnect backoff.
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// `text` (human-readable) or `json`.
    pub log_format: LogFormat,
    /// `off`: anonymous clients (wave 1); `jwt`: every client proves who it is with a JWT.
    pub auth_mode: AuthMode,
    /// In `jwt` mode, a client without a good token by then is closed with 4001.
    #[serde(with = "humantime_serde")]
    pub auth_timeout: Duration,
    /// Comma-separated HS256 secrets; every one verifies (key rotation).
    pub jwt_secrets: Option<SecretString>,
    /// Comma-separated PEM files of RS256 / ES256 / EdDSA public keys.
    pub jwt_public_keys: Option<String>,
    /// When set, a token's `aud` must contain it.
    pub jwt_audience: Option<String>,
    /// When set, a token's `iss` must be it.
    pub jwt_issuer: Option<String>,
    /// Comma-separated room patterns for tokens without a `rooms` claim.
    pub jwt_default_rooms: String,
    /// Clock skew allowed on `exp` (and `nbf`): a token is good until `exp + jwt_leeway`.
    #[serde(with = "humantime_serde")]
    pub jwt_leeway: Duration,
    /// Connections of one user (`sub`) on this hub; one more is closed with 4008.
    pub max_connections_per_user: usize,
    /// Messages kept per room for late joiners and recovery; 0 keeps none.
    pub history_size: usize,
    /// A room's history is dropped after this long without a message.
    #[serde(with = "humantime_serde")]
    pub history_ttl: Duration,
    /// Most messages one `since` join may replay; more is `too_many`.
    pub recovery_max: usize,
    /// Every connection starts in its user's personal room `user:<user id>` (see
    /// [`crate::namespace::personal_room`]).
    pub personal_rooms: bool,
    /// The `namespaces` setting as read (`[namespaces.NAME]` tables, or `HUB_NAMESPACES` holding
    /// the same as JSON); [`Settings::namespaces`] is what it means.
    #[serde(rename = "namespaces", default)]
    pub namespaces_raw: RawNamespaces,
    /// Every namespace's policy, built by [`Settings::load_from`] from `namespaces_raw` and the
    /// global history settings (what a namespace leaves unset).
    #[serde(skip)]
    pub namespaces: Namespaces,
    /// Address of the server API and `/metrics` (a second listener, for backends and operators).
    pub api_listen: SocketAddr,
    /// Comma-separated API keys (`Authorization: Bearer <key>`); unset: no API listener at all.
    pub api_keys: Option<SecretString>,
    /// Signs every request to the backend (`X-Hub-Signature`, HMAC-SHA256); required once any
    /// hook URL is set.
    pub hook_secret: Option<SecretString>,
    /// Longest wait for a backend's answer to a proxy call; past it the call fails closed.
    #[serde(with = "humantime_serde")]
    pub proxy_timeout: Duration,
    /// Proxy calls in flight per hub, at most; one more fails at once (`unavailable`).
    pub proxy_concurrency: usize,
    /// `auth_mode = "proxy"`: asked who each client is, after the upgrade and before `welcome`.
    pub proxy_connect_url: Option<String>,
    /// Asked before a join of a room whose namespace sets `proxy_subscribe`.
    pub proxy_subscribe_url: Option<String>,
    /// Asked before a client's message to a room whose namespace sets `proxy_publish`.
    pub proxy_publish_url: Option<String>,
    /// Answers `rpc` frames; unset: they get `not_available`.
    pub proxy_rpc_url: Option<String>,
    /// Comma-separated headers of the upgrade request posted to the connect proxy (no others).
    pub proxy_headers: String,
    /// The four proxy URLs as parsed by [`Settings::load_from`] (checked there: `http://` only).
    #[serde(skip)]
    pub proxy_urls: ProxyUrls,
    /// Where webhook events are POSTed (`http://` only); unset: no webhooks.
    pub webhook_url: Option<String>,
    /// A webhook event with no 2xx this long after it happened is dropped (and counted).
    #[serde(with = "humantime_serde")]
    pub webhook_max_age: Duration,
    /// Not a setting (no key, no variable): the hub-echo conformance binary sets it, and every
    /// session then writes back each message it reads instead of running the chat protocol.
    #[serde(skip)]
    pub echo: bool,
}

/// The entries of a comma-separated setting, trimmed, empty ones skipped.
pub fn comma_list(setting: &str) -> impl Iterator<Item = &str> {
    setting.split(',').map(str::trim).filter(|s| !s.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Off,
    Jwt,
    /// The backend's connect proxy says who each client is (`proxy_connect_url`).
    Proxy,
}

/// Where each backend proxy is, once the URLs are checked.
#[derive(Debug, Clone, Default)]
pub struct ProxyUrls {
    pub connect: Option<http::Uri>,
    pub subscribe: Option<http::Uri>,
    pub publish: Option<http::Uri>,
    pub rpc: Option<http::Uri>,
}

/// `value` of setting `key` as a backend URL: `http://host[:port]/path` (the hooks' client speaks
/// plain HTTP; a TLS backend sits behind a local proxy).
fn hook_url(key: &str, value: Option<&str>) -> Result<Option<http::Uri>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let bad = |why: &str| ConfigError::Invalid(format!("{key} {why}: {value:?}"));
    let uri: http::Uri = value.trim().parse().map_err(|_| bad("is not a URL"))?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return Err(bad("must be an http://host[:port]/path URL"));
    }
    Ok(Some(uri))
}

/// The defaults, as TOML, so the README table and the code cannot drift apart silently.
pub const DEFAULTS: &str = r#"
listen = "0.0.0.0:8080"
name = "hub"
redis_prefix = "rthub:"
max_message_bytes = 65536
compression = true
compression_min_bytes = 256
max_connections = 100000
max_rooms_per_client = 100
send_queue = 1024
send_queue_bytes = 1048576
rate_limit_per_sec = 100
rate_limit_burst = 200
rate_limit_max_rejects = 20
handshake_timeout = "10s"
max_handshakes = 1024
max_header_bytes = 16384
ping_interval = "20s"
pong_timeout = "60s"
shutdown_grace = "10s"
sse_session_ttl = "30s"
presence_leave_delay = "5s"
presence_events_max = 1000
hub_heartbeat = "2s"
hub_timeout = "10s"
bridge_buffer = 10000
inbound_buffer = 10000
inbound_buffer_bytes = 16777216
redis_ping_interval = "1s"
redis_timeout = "2s"
reconnect_max = "2s"
log_format = "text"
auth_mode = "off"
auth_timeout = "5s"
jwt_default_rooms = "*"
jwt_leeway = "30s"
max_connections_per_user = 32
history_size = 100
history_ttl = "10m"
recovery_max = 300
personal_rooms = true
api_listen = "127.0.0.1:8090"
proxy_timeout = "1s"
proxy_concurrency = 256
proxy_headers = "cookie,authorization,origin,user-agent"
webhook_max_age = "1h"
"#;

/// Defaults, then the file, then `HUB_<KEY>`; the conventional `REDIS_URL` and
/// `REDIS_CLUSTER_NODES` are honoured as they are, over `HUB_REDIS_URL` / `HUB_REDIS_CLUSTER_NODES`.
const LAYERS: Layers = Layers {
    defaults: DEFAULTS,
    env_prefix: "HUB",
    named: &[
        ("REDIS_URL", "redis_url"),
        ("REDIS_CLUSTER_NODES", "redis_cluster_nodes"),
    ],
};

impl Settings {
    /// Reads defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment, for tests.
    pub fn load_from<K: Into<String>, V: Into<String>>(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        let mut settings: Settings = LAYERS.load(file, env)?;
        settings.validate()?;
        let globals = Globals {
            history_size: settings.history_size,
            history_ttl: settings.history_ttl,
            recovery_max: settings.recovery_max,
        };
        settings.namespaces =
            Namespaces::new(globals, &settings.namespaces_raw).map_err(ConfigError::Invalid)?;
        settings.proxy_urls = settings.hooks()?;
        Ok(settings)
    }

    /// How long and how large a request's head may be, on both listeners.
    pub fn request_limits(&self) -> http_accept::Limits {
        http_accept::Limits {
            header_timeout: self.handshake_timeout,
            max_header_bytes: self.max_header_bytes,
        }
    }

    /// The backend hooks' settings checked together: URLs, the secret that signs them, what
    /// `auth_mode = proxy` and the namespaces' `proxy_subscribe` / `proxy_publish` need.
    fn hooks(&self) -> Result<ProxyUrls, ConfigError> {
        let urls = ProxyUrls {
            connect: hook_url("proxy_connect_url", self.proxy_connect_url.as_deref())?,
            subscribe: hook_url("proxy_subscribe_url", self.proxy_subscribe_url.as_deref())?,
            publish: hook_url("proxy_publish_url", self.proxy_publish_url.as_deref())?,
            rpc: hook_url("proxy_rpc_url", self.proxy_rpc_url.as_deref())?,
        };
        let invalid = |text: String| Err(ConfigError::Invalid(text));
        let any_url = [&urls.connect, &urls.subscribe, &urls.publish, &urls.rpc]
            .iter()
            .any(|u| u.is_some());
        let secret = self.hook_secret.as_ref().map(ExposeSecret::expose_secret);
        // Unsigned requests would let anyone who reaches the backend pose as a hub.
        if any_url && secret.is_none_or(|s| s.trim().is_empty()) {
            return invalid("hook_secret must be set when a proxy_*_url is set".into());
        }
        if let Some(bad) = comma_list(&self.proxy_headers)
            .find(|h| http::HeaderName::try_from(h.to_ascii_lowercase()).is_err())
        {
            return invalid(format!("proxy_headers: {bad:?} is not a header name"));
        }
        if self.auth_mode == AuthMode::Proxy && urls.connect.is_none() {
            return invalid("auth_mode = \"proxy\" needs proxy_connect_url".into());
        }
        for policy in self.namespaces.all() {
            let ns = policy.label();
            if policy.proxy_subscribe && urls.subscribe.is_none() {
                return invalid(format!(
                    "namespaces.{ns}.proxy_subscribe needs proxy_subscribe_url"
                ));
            }
            if policy.proxy_publish && urls.publish.is_none() {
                return invalid(format!(
                    "namespaces.{ns}.proxy_publish needs proxy_publish_url"
                ));
            }
        }
        Ok(urls)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let zero = [
            ("max_message_bytes", self.max_message_bytes == 0),
            ("max_connections", self.max_connections == 0),
            ("max_rooms_per_client", self.max_rooms_per_client == 0),
            ("send_queue", self.send_queue == 0),
            ("send_queue_bytes", self.send_queue_bytes == 0),
            ("bridge_buffer", self.bridge_buffer == 0),
            ("inbound_buffer", self.inbound_buffer == 0),
            ("inbound_buffer_bytes", self.inbound_buffer_bytes == 0),
            ("rate_limit_per_sec", self.rate_limit_per_sec == 0),
            ("rate_limit_burst", self.rate_limit_burst == 0),
            // 0 would close on the first refused frame, before the error frame that explains it.
            ("rate_limit_max_rejects", self.rate_limit_max_rejects == 0),
            // These drive timers and intervals: zero would panic (tokio intervals) or spin.
            ("handshake_timeout", self.handshake_timeout.is_zero()),
            ("max_handshakes", self.max_handshakes == 0),
            ("ping_interval", self.ping_interval.is_zero()),
            ("sse_session_ttl", self.sse_session_ttl.is_zero()),
            ("hub_heartbeat", self.hub_heartbeat.is_zero()),
            ("redis_ping_interval", self.redis_ping_interval.is_zero()),
            ("redis_timeout", self.redis_timeout.is_zero()),
            ("reconnect_max", self.reconnect_max.is_zero()),
            ("auth_timeout", self.auth_timeout.is_zero()),
            (
                "max_connections_per_user",
                self.max_connections_per_user == 0,
            ),
            // Redis key TTLs are whole seconds: below one second a key would never expire.
            ("history_ttl", self.history_ttl < Duration::from_secs(1)),
            ("recovery_max", self.recovery_max == 0),
            ("proxy_timeout", self.proxy_timeout.is_zero()),
            ("proxy_concurrency", self.proxy_concurrency == 0),
            ("webhook_max_age", self.webhook_max_age.is_zero()),
        ];
        if let Some((key, _)) = zero.iter().find(|(_, is_zero)| *is_zero) {
            return Err(ConfigError::Invalid(format!(
                "{key} must be greater than 0"
            )));
        }
        if self.max_header_bytes < http_accept::MIN_HEADER_BYTES {
            return Err(ConfigError::Invalid(format!(
                "max_header_bytes must be at least {}",
                http_accept::MIN_HEADER_BYTES
            )));
        }
        if self.pong_timeout <= self.ping_interval {
            return Err(ConfigError::Invalid(
                "pong_timeout must be longer than ping_interval".into(),
            ));
        }
        if self.hub_timeout < self.hub_heartbeat * 2 {
            return Err(ConfigError::Invalid(
                "hub_timeout must be at least twice hub_heartbeat".into(),
            ));
        }
        if self.send_queue_bytes < self.max_message_bytes {
            return Err(ConfigError::Invalid(
                "send_queue_bytes must be at least max_message_bytes".into(),
            ));
        }
        if self.compression_min_bytes > self.max_message_bytes {
            return Err(ConfigError::Invalid(
                "compression_min_bytes must be at most max_message_bytes (to compress nothing, \
                 set compression = false)"
                    .into(),
            ));
        }
        if self.redis_url.is_some() && self.redis_cluster_nodes.is_some() {
            return Err(ConfigError::Invalid(
                "set redis_url (one Redis) or redis_cluster_nodes (a Redis Cluster), not both"
                    .into(),
            ));
        }
        if self
            .redis_cluster_nodes
            .as_ref()
            .is_some_and(|n| comma_list(n.expose_secret()).next().is_none())
        {
            return Err(ConfigError::Invalid(
                "redis_cluster_nodes must name at least one node".into(),
            ));
        }
        if self.name.trim().is_empty() {
            return Err(ConfigError::Invalid("name must not be empty".into()));
        }
        if let Some(url) = &self.webhook_url {
            webhook_uri(url).map_err(ConfigError::Invalid)?;
            if self
                .hook_secret
                .as_ref()
                .is_none_or(|s| s.expose_secret().is_empty())
            {
                return Err(ConfigError::Invalid(
                    "hook_secret (HUB_HOOK_SECRET) is required when webhook_url is set: the \
                     backend checks every webhook's signature with it"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}

/// `webhook_url` as the hook client takes it: `http://host[:port]/path` (the client speaks plain
/// HTTP; a backend behind TLS is reached through a local proxy).
pub fn webhook_uri(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("webhook_url is not a URL ({e}): {url:?}"))?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return Err(format!(
            "webhook_url must be an http://host[:port]/path URL (https is not supported), not {url:?}"
        ));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_ENV: [(&str, &str); 0] = [];

    fn exposed(secret: &Option<SecretString>) -> Option<&str> {
        secret.as_ref().map(ExposeSecret::expose_secret)
    }

    #[test]
    fn defaults_load_without_file_or_environment() {
        let s = Settings::load_from(None, NO_ENV).expect("defaults are valid");
        assert_eq!(s.listen.port(), 8080);
        assert_eq!(s.max_message_bytes, 64 * 1024);
        assert!(s.compression);
        assert_eq!(s.sse_session_ttl, Duration::from_secs(30));
        assert_eq!(s.compression_min_bytes, 256);
        assert!(s.redis_url.is_none());
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn environment_overrides_defaults() {
        let s = Settings::load_from(
            None,
            [
                ("HUB_LISTEN", "127.0.0.1:9999"),
                ("HUB_NAME", "east"),
                ("REDIS_URL", "redis://:secret@redis:6379"),
                ("HUB_PING_INTERVAL", "250ms"),
                ("HUB_MAX_MESSAGE_BYTES", "1024"),
                ("HUB_ALLOWED_ORIGINS", "http://a.example,http://b.example"),
            ],
        )
        .expect("valid");
        assert_eq!(s.listen.port(), 9999);
        assert_eq!(s.name, "east");
        assert_eq!(exposed(&s.redis_url), Some("redis://:secret@redis:6379"));
        assert!(s.redis_cluster_nodes.is_none());
        assert_eq!(s.ping_interval, Duration::from_millis(250));
        assert_eq!(s.max_message_bytes, 1024);
        assert_eq!(
            s.allowed_origins.as_deref(),
            Some("http://a.example,http://b.example")
        );
    }

    #[test]
    fn secrets_are_read_from_the_environment_and_never_debug_printed() {
        let s = Settings::load_from(
            None,
            [
                ("HUB_AUTH_MODE", "jwt"),
                ("HUB_JWT_SECRETS", "new-secret-new-secret-new-secret,old"),
            ],
        )
        .expect("valid");
        assert_eq!(s.auth_mode, AuthMode::Jwt);
        assert_eq!(
            exposed(&s.jwt_secrets),
            Some("new-secret-new-secret-new-secret,old")
        );
        assert!(!format!("{s:?}").contains("new-secret"), "{s:?}");
        assert_eq!(s.auth_timeout, Duration::from_secs(5));
        assert_eq!(s.max_connections_per_user, 32);
    }

    #[test]
    fn redis_passwords_and_api_keys_are_never_debug_printed() {
        let s = Settings::load_from(
            None,
            [
                ("REDIS_URL", "redis://:hunter2-redis@redis:6379/0"),
                ("HUB_API_KEYS", "api-key-0123456789abcdef"),
            ],
        )
        .expect("valid");
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2-redis"), "{debug}");
        assert!(!debug.contains("api-key-0123456789abcdef"), "{debug}");
        assert!(debug.contains("REDACTED"), "{debug}");
        let s = Settings::load_from(
            None,
            [(
                "HUB_REDIS_CLUSTER_NODES",
                "redis://:hunter3-cluster@a:7000,redis://:hunter3-cluster@b:7001",
            )],
        )
        .expect("valid");
        assert!(s.redis_url.is_none());
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter3-cluster"), "{debug}");
        assert_eq!(
            exposed(&s.redis_cluster_nodes).map(|n| comma_list(n).count()),
            Some(2)
        );
    }

    #[test]
    fn bad_values_are_rejected_with_the_key_named() {
        let err = Settings::load_from(None, [("HUB_SEND_QUEUE", "0")]).unwrap_err();
        assert!(err.to_string().contains("send_queue"), "{err}");
        let err = Settings::load_from(None, [("HUB_SEND_QUEUE_BYTES", "65535")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("send_queue_bytes must be at least max_message_bytes"),
            "{err}"
        );
        let err = Settings::load_from(None, [("HUB_PING_INTERVAL", "soon")]).unwrap_err();
        assert!(err.to_string().contains("ping_interval"), "{err}");
        for key in [
            "HANDSHAKE_TIMEOUT",
            "PING_INTERVAL",
            "HUB_HEARTBEAT",
            "REDIS_PING_INTERVAL",
            "REDIS_TIMEOUT",
            "RECONNECT_MAX",
        ] {
            let var = format!("HUB_{key}");
            let err = Settings::load_from(None, [(&var, "0s")]).unwrap_err();
            let name = key.to_lowercase();
            assert!(
                err.to_string()
                    .contains(&format!("{name} must be greater than 0")),
                "{var}=0s: {err}"
            );
        }
        let err = Settings::load_from(
            None,
            [
                ("REDIS_URL", "redis://a:6379"),
                ("REDIS_CLUSTER_NODES", "redis://b:6379"),
            ],
        )
        .unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
        let s = Settings::load_from(
            None,
            [("REDIS_CLUSTER_NODES", "redis://a:6379,redis://b:6379")],
        )
        .expect("a cluster alone is valid");
        assert_eq!(
            exposed(&s.redis_cluster_nodes),
            Some("redis://a:6379,redis://b:6379")
        );
        assert!(s.redis_url.is_none());
        let err = Settings::load_from(None, [("HUB_REDIS_CLUSTER_NODES", " , ")]).unwrap_err();
        assert!(err.to_string().contains("redis_cluster_nodes"), "{err}");
        let err = Settings::load_from(None, [("HUB_AUTH_MODE", "magic")]).unwrap_err();
        assert!(err.to_string().contains("auth_mode"), "{err}");
        let err = Settings::load_from(None, [("HUB_RATE_LIMIT_MAX_REJECTS", "0")]).unwrap_err();
        assert!(err.to_string().contains("rate_limit_max_rejects"), "{err}");
    }

    #[test]
    fn webhooks_need_an_http_url_and_the_hook_secret() {
        let s = Settings::load_from(None, NO_ENV).expect("defaults");
        assert!(s.webhook_url.is_none() && s.hook_secret.is_none());
        assert_eq!(s.webhook_max_age, Duration::from_secs(3600));
        let s = Settings::load_from(
            None,
            [
                ("HUB_WEBHOOK_URL", "http://backend:3000/hooks"),
                ("HUB_HOOK_SECRET", "hook-secret-0123456789"),
                ("HUB_WEBHOOK_MAX_AGE", "10m"),
            ],
        )
        .expect("valid");
        assert_eq!(s.webhook_url.as_deref(), Some("http://backend:3000/hooks"));
        assert_eq!(s.webhook_max_age, Duration::from_secs(600));
        assert_eq!(exposed(&s.hook_secret), Some("hook-secret-0123456789"));
        assert!(!format!("{s:?}").contains("hook-secret-0123456789"));
        let err =
            Settings::load_from(None, [("HUB_WEBHOOK_URL", "http://backend/hooks")]).unwrap_err();
        assert!(
            err.to_string().contains("hook_secret (HUB_HOOK_SECRET)"),
            "{err}"
        );
        for url in ["https://backend/hooks", "backend/hooks", "http://"] {
            let err =
                Settings::load_from(None, [("HUB_WEBHOOK_URL", url), ("HUB_HOOK_SECRET", "s")])
                    .unwrap_err();
            assert!(err.to_string().contains("webhook_url"), "{url}: {err}");
        }
        let err = Settings::load_from(None, [("HUB_WEBHOOK_MAX_AGE", "0s")]).unwrap_err();
        assert!(err.to_string().contains("webhook_max_age"), "{err}");
        let err = Settings::load_from(None, [("HUB_WEBHOOK_MAX_AGE", "forever")]).unwrap_err();
        assert!(err.to_string().contains("webhook_max_age"), "{err}");
    }

    /// A TOML file of this test's own, removed when dropped (even when an assertion fails).
    fn temp_toml(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("a temp file");
        std::io::Write::write_all(&mut file, text.as_bytes()).expect("write the file");
        file
    }

    #[test]
    fn the_documented_namespaces_example_loads_as_it_is() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/namespaces.example.toml");
        let s = Settings::load_from(Some(&example), NO_ENV).expect("the example is valid");
        let ns = &s.namespaces;
        assert!(ns.is_strict());
        let policy = |room: &str| {
            let room = crate::protocol::Room::parse(room).expect("room");
            ns.lookup(&room).expect("declared").clone()
        };
        let chat = policy("chat:team-1");
        assert_eq!(
            (chat.history_size, chat.history_ttl, chat.recovery_max),
            (1000, Duration::from_secs(86_400), 1000)
        );
        assert!(chat.presence && chat.presence_events && chat.client_publish);
        let live = policy("live:match-9");
        assert!(!live.presence && !live.presence_events);
        assert_eq!((live.history_size, live.history_ttl.as_secs()), (20, 60));
        assert!(!policy("notify:u1").client_publish);
        let support = policy("support:1");
        assert!(support.presence && !support.presence_events);
        let user = policy("user:ana");
        assert_eq!((user.history_size, user.presence), (50, false));
        assert_eq!(policy("general").history_size, 100, "the global setting");
        let unknown = crate::protocol::Room::parse("chta:x").expect("room");
        assert_eq!(ns.lookup(&unknown).unwrap_err().code(), "unknown_namespace");
    }

    #[test]
    fn the_compose_stacks_namespaces_load() {
        let compose = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker-compose.yml");
        let compose = std::fs::read_to_string(compose).expect("read docker-compose.yml");
        let value = compose
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("HUB_NAMESPACES: '")?
                    .strip_suffix('\'')
            })
            .expect("docker-compose.yml sets HUB_NAMESPACES in single quotes");
        // The stack's hubs get these with it: its `moderated` namespace needs the publish proxy.
        let s = Settings::load_from(
            None,
            [
                ("HUB_NAMESPACES", value),
                ("HUB_PROXY_PUBLISH_URL", "http://web1:9081/hooks/publish"),
                ("HUB_HOOK_SECRET", "compose-test-hook-secret"),
            ],
        )
        .expect("valid");
        let moderated = crate::protocol::Room::parse("moderated:lobby").expect("room");
        assert!(
            s.namespaces
                .lookup(&moderated)
                .expect("declared")
                .proxy_publish
        );
        let notify = crate::protocol::Room::parse("notify:all").expect("room");
        assert!(
            !s.namespaces
                .lookup(&notify)
                .expect("declared")
                .client_publish
        );
        assert_eq!(s.namespaces.personal().history_size, 20);
    }

    #[test]
    fn namespaces_come_from_the_file_or_from_hub_namespaces_as_json() {
        let s = Settings::load_from(None, NO_ENV).expect("defaults");
        assert!(s.personal_rooms);
        assert!(!s.namespaces.is_strict(), "none declared");
        let file = temp_toml(
            "history_size = 40\n[namespaces.chat]\nhistory_ttl = \"2h\"\n[namespaces.Big-1]\npresence = false\n",
        );
        let s = Settings::load_from(Some(file.path()), NO_ENV).expect("valid");
        let names: Vec<&str> = s.namespaces.all().iter().map(|p| p.label()).collect();
        assert_eq!(
            names,
            ["default", "user", "Big-1", "chat"],
            "names keep their case"
        );
        let chat = &s.namespaces.all()[3];
        assert_eq!((chat.history_size, chat.history_ttl.as_secs()), (40, 7200));
        // The variable replaces the file's table as a whole.
        let s = Settings::load_from(
            Some(file.path()),
            [
                ("HUB_NAMESPACES", r#"{"feed":{"client_publish":false}}"#),
                ("HUB_PERSONAL_ROOMS", "false"),
            ],
        )
        .expect("valid");
        let names: Vec<&str> = s.namespaces.all().iter().map(|p| p.label()).collect();
        assert_eq!(names, ["default", "user", "feed"]);
        assert!(!s.namespaces.all()[2].client_publish);
        assert!(!s.personal_rooms);
    }

    #[test]
    fn a_bad_namespace_stops_the_hub_with_the_key_named() {
        let err = Settings::load_from(
            None,
            [("HUB_NAMESPACES", r#"{"chat":{"history_ttl":"forever"}}"#)],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("namespaces.chat.history_ttl"),
            "{err}"
        );
        let file = temp_toml("[namespaces.chat]\npresense = false\n");
        let err = Settings::load_from(Some(file.path()), NO_ENV).unwrap_err();
        assert!(
            err.to_string().contains("namespaces.chat.presense"),
            "{err}"
        );
        let err = Settings::load_from(None, [("HUB_NAMESPACES", "chat")]).unwrap_err();
        assert!(
            err.to_string().contains("HUB_NAMESPACES is not JSON"),
            "{err}"
        );
    }

    #[test]
    fn compression_settings_are_read_and_checked() {
        let s = Settings::load_from(
            None,
            [
                ("HUB_COMPRESSION", "false"),
                ("HUB_COMPRESSION_MIN_BYTES", "0"),
            ],
        )
        .expect("valid");
        assert!(!s.compression);
        assert_eq!(s.compression_min_bytes, 0);
        for (var, value) in [
            ("HUB_COMPRESSION", "maybe"),
            ("HUB_COMPRESSION_MIN_BYTES", "-1"),
            ("HUB_COMPRESSION_MIN_BYTES", "lots"),
        ] {
            let err = Settings::load_from(None, [(var, value)]).unwrap_err();
            let key = var.trim_start_matches("HUB_").to_lowercase();
            assert!(err.to_string().contains(&key), "{var}={value}: {err}");
        }
        let err = Settings::load_from(None, [("HUB_COMPRESSION_MIN_BYTES", "65537")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("compression_min_bytes must be at most max_message_bytes"),
            "{err}"
        );
    }

    #[test]
    fn hook_settings_are_read_and_checked_with_the_key_named() {
        let s = Settings::load_from(None, NO_ENV).expect("defaults");
        assert_eq!(s.proxy_timeout, Duration::from_secs(1));
        assert_eq!(s.proxy_concurrency, 256);
        assert_eq!(s.proxy_headers, "cookie,authorization,origin,user-agent");
        assert!(s.proxy_urls.connect.is_none() && s.hook_secret.is_none());
        let s = Settings::load_from(
            None,
            [
                ("HUB_AUTH_MODE", "proxy"),
                ("HUB_HOOK_SECRET", "hook-secret-never-printed"),
                ("HUB_PROXY_CONNECT_URL", "http://backend:3000/hub/connect"),
                ("HUB_PROXY_TIMEOUT", "250ms"),
                ("HUB_NAMESPACES", r#"{"mod":{"proxy_publish":true}}"#),
                ("HUB_PROXY_PUBLISH_URL", "http://backend:3000/hub/publish"),
            ],
        )
        .expect("valid");
        assert_eq!(s.auth_mode, AuthMode::Proxy);
        assert_eq!(s.proxy_timeout, Duration::from_millis(250));
        let connect = s.proxy_urls.connect.as_ref().expect("parsed");
        assert_eq!(connect.path(), "/hub/connect");
        assert!(!format!("{s:?}").contains("hook-secret-never-printed"));
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut env = vec![("HUB_HOOK_SECRET", "s3cret")];
            env.extend_from_slice(pairs);
            Settings::load_from(None, env)
        };
        for (pairs, named) in [
            (
                &[("HUB_AUTH_MODE", "proxy")][..],
                "auth_mode = \"proxy\" needs proxy_connect_url",
            ),
            (
                &[("HUB_PROXY_RPC_URL", "https://b/rpc")][..],
                "proxy_rpc_url must be an http://",
            ),
            (
                &[("HUB_PROXY_SUBSCRIBE_URL", "not a url")][..],
                "proxy_subscribe_url is not a URL",
            ),
            (
                &[("HUB_NAMESPACES", r#"{"mod":{"proxy_subscribe":true}}"#)][..],
                "namespaces.mod.proxy_subscribe needs proxy_subscribe_url",
            ),
            (
                &[("HUB_NAMESPACES", r#"{"mod":{"proxy_publish":true}}"#)][..],
                "namespaces.mod.proxy_publish needs proxy_publish_url",
            ),
            (&[("HUB_PROXY_TIMEOUT", "0s")][..], "proxy_timeout"),
            (&[("HUB_PROXY_CONCURRENCY", "0")][..], "proxy_concurrency"),
            (
                &[("HUB_PROXY_HEADERS", "cookie,bad header")][..],
                "proxy_headers: \"bad header\" is not a header name",
            ),
        ] {
            let err = with(pairs).unwrap_err();
            assert!(err.to_string().contains(named), "{pairs:?}: {err}");
        }
        let err = Settings::load_from(None, [("HUB_PROXY_RPC_URL", "http://b/rpc")]).unwrap_err();
        assert!(err.to_string().contains("hook_secret must be set"), "{err}");
    }
}
