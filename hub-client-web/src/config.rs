//! Settings: built-in defaults → optional TOML file (`--config PATH`) → environment (`WEB_*`, `HUB_URL`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use humantime::format_duration;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
pub use service_kit::ConfigError;
use service_kit::{Layers, LogFormat, MIN_SECRET_BYTES};

/// Every tunable of the web server. Field names are the TOML keys; `WEB_<FIELD>` is the environment
/// variable, except that the conventional `HUB_URL` also sets `hub_url` (and wins over `WEB_HUB_URL`).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Override of the hub's WebSocket URL as the *browser* reaches it (not as this server would), e.g.
    /// `wss://chat.example/ws` behind a TLS proxy. Unset (the default): the page connects to
    /// `ws://<the host it was loaded from>:<hub_port><hub_path>`, so the same server works from
    /// `localhost` and from another machine on the network.
    #[serde(default)]
    pub hub_url: Option<String>,
    /// The hub's port as the browser reaches it (its published port behind Docker), when `hub_url` is unset.
    pub hub_port: u16,
    /// The hub's WebSocket path, when `hub_url` is unset.
    pub hub_path: String,
    /// Page title and heading.
    pub title: String,
    /// Short name of the paired hub shown in the header until its welcome frame names it; empty
    /// shows the hub URL until then (after the welcome the page shows the hub's own name).
    pub hub_label: String,
    /// First delay of the page's jittered exponential reconnect backoff.
    #[serde(with = "humantime_serde")]
    pub reconnect_min: Duration,
    /// Cap of that backoff.
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// A connection must deliver its request headers within this time, or it is closed: idle or
    /// trickling sockets cannot pile up (slowloris).
    #[serde(with = "humantime_serde")]
    pub request_header_timeout: Duration,
    /// `text` (human-readable) or `json`.
    pub log_format: LogFormat,
    /// HS256 secret of the demo identity provider (`POST /token`), shared with the hubs'
    /// `HUB_JWT_SECRETS`. Unset: no sign-in, `/token` is 404 and the page runs anonymous.
    #[serde(default)]
    pub jwt_secret: Option<SecretString>,
    /// Lifetime of a demo token; the page asks for a new one at 80 % of it.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// `iss` claim of demo tokens, for hubs that check `HUB_JWT_ISSUER`. Unset: no `iss`.
    #[serde(default)]
    pub jwt_issuer: Option<String>,
    /// `aud` claim of demo tokens, for hubs that check `HUB_JWT_AUDIENCE`. Unset: no `aud`.
    #[serde(default)]
    pub jwt_audience: Option<String>,
    /// Comma-separated base URLs of the hubs' server APIs as *this server* reaches them (e.g.
    /// `http://hub1:8090,http://hub2:8090`), read for the status page (`/status`): `GET /api/hubs`
    /// from the first that answers, `GET /metrics` from each. Unset: the status page says so.
    #[serde(default)]
    pub api_urls: Option<String>,
    /// The key those APIs accept (one of the hubs' `HUB_API_KEYS`). Read here only: it never
    /// reaches a browser.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// The secret the hubs sign their hook requests with (their `HUB_HOOK_SECRET`). Set: this server
    /// is the demo backend, `POST /hooks/publish` (the word check of `moderated:` rooms) and `POST
    /// /hooks/webhooks` (listed on the status page) answer signed requests. Unset: both are 404.
    #[serde(default)]
    pub hook_secret: Option<SecretString>,
}

/// Upper bound of `token_ttl` (24h, as the error message says): the demo tokens are meant to be
/// short-lived, the page refreshes them.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Where the page's WebSocket connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubTarget {
    /// The configured `hub_url`, as is.
    Fixed(String),
    /// `ws://<host the page was loaded from>:<port><path>`.
    PageHost { port: u16, path: String },
}

impl HubTarget {
    /// For logs and `/health`.
    pub fn describe(&self) -> String {
        match self {
            HubTarget::Fixed(url) => url.clone(),
            HubTarget::PageHost { port, path } => format!("ws://<page host>:{port}{path}"),
        }
    }
}

/// No character that would split a Content-Security-Policy header or an HTML attribute.
fn csp_safe(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || ";,'\"<>".contains(c))
}

/// The defaults, as TOML, so the README table and the code cannot drift apart silently.
pub const DEFAULTS: &str = r#"
listen = "0.0.0.0:9081"
hub_port = 8080
hub_path = "/ws"
title = "realtime-hub chat"
hub_label = ""
reconnect_min = "500ms"
reconnect_max = "10s"
request_header_timeout = "10s"
log_format = "text"
token_ttl = "15m"
"#;

/// Defaults, then the file, then `WEB_<KEY>`; the conventional `HUB_URL` (the name compose files
/// and the hub's docs use) is honoured as it is, over `WEB_HUB_URL`.
const LAYERS: Layers = Layers {
    defaults: DEFAULTS,
    env_prefix: "WEB",
    named: &[("HUB_URL", "hub_url")],
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
        let settings: Settings = LAYERS.load(file, env)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Where the page's WebSocket goes: the `hub_url` override, or derived from the page's host.
    pub fn hub_target(&self) -> HubTarget {
        match &self.hub_url {
            Some(url) => HubTarget::Fixed(url.clone()),
            None => HubTarget::PageHost {
                port: self.hub_port,
                path: self.hub_path.clone(),
            },
        }
    }

    /// The hub API base URLs of `api_urls`, without a trailing `/`.
    pub fn api_urls(&self) -> Vec<String> {
        self.api_urls
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(|u| u.trim().trim_end_matches('/'))
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = self.hub_url.as_deref() {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return Err(ConfigError::Invalid(format!(
                    "hub_url must start with ws:// or wss://, got {url:?}"
                )));
            }
            // The URL is also written into the Content-Security-Policy header, where these would split it.
            if !csp_safe(url) {
                return Err(ConfigError::Invalid(format!(
                    "hub_url contains a character not allowed in a URL: {url:?}"
                )));
            }
        }
        if self.hub_port == 0 {
            return Err(ConfigError::Invalid("hub_port must not be 0".into()));
        }
        if !self.hub_path.starts_with('/')
            || !csp_safe(&self.hub_path)
            || self.hub_path.contains('?')
        {
            return Err(ConfigError::Invalid(format!(
                "hub_path must be a path starting with /, got {:?}",
                self.hub_path
            )));
        }
        for url in self.api_urls() {
            let Some(rest) = url.strip_prefix("http://") else {
                return Err(ConfigError::Invalid(format!(
                    "api_urls (WEB_API_URLS): each must start with http:// (the hubs' internal API \
                     listener), got {url:?}"
                )));
            };
            if rest.is_empty() || rest.contains(['/', '?', '#', '@']) || !csp_safe(rest) {
                return Err(ConfigError::Invalid(format!(
                    "api_urls (WEB_API_URLS): each must be http://host:port, got {url:?}"
                )));
            }
        }
        if !self.api_urls().is_empty() && self.api_key.is_none() {
            return Err(ConfigError::Invalid(
                "api_urls (WEB_API_URLS) needs api_key (WEB_API_KEY): the hubs' API refuses \
                 requests without a key"
                    .into(),
            ));
        }
        if self.title.trim().is_empty() {
            return Err(ConfigError::Invalid("title must not be empty".into()));
        }
        if self.reconnect_min.is_zero() || self.reconnect_min > self.reconnect_max {
            return Err(ConfigError::Invalid(
                "reconnect_min must be greater than 0 and at most reconnect_max".into(),
            ));
        }
        if self.request_header_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "request_header_timeout must be greater than 0".into(),
            ));
        }
        if let Some(secret) = &self.jwt_secret
            && secret.expose_secret().len() < MIN_SECRET_BYTES
        {
            // The length is safe to say; the secret itself never goes into a message.
            return Err(ConfigError::Invalid(format!(
                "jwt_secret (WEB_JWT_SECRET) must be at least {MIN_SECRET_BYTES} bytes for HS256 \
                 (RFC 7518), got {}",
                secret.expose_secret().len()
            )));
        }
        if self.token_ttl < Duration::from_secs(1) || self.token_ttl > MAX_TOKEN_TTL {
            return Err(ConfigError::Invalid(format!(
                "token_ttl must be between 1s and 24h, got {}",
                format_duration(self.token_ttl)
            )));
        }
        for (key, value) in [
            ("jwt_issuer", &self.jwt_issuer),
            ("jwt_audience", &self.jwt_audience),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(ConfigError::Invalid(format!("{key} must not be blank")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_ENV: [(&str, &str); 0] = [];

    #[test]
    fn defaults_load_without_file_or_environment() {
        let s = Settings::load_from(None, NO_ENV).expect("defaults are valid");
        assert_eq!(s.listen.port(), 9081);
        assert_eq!(
            s.hub_target(),
            HubTarget::PageHost {
                port: 8080,
                path: "/ws".into()
            },
            "the page's own host unless overridden"
        );
        assert!(s.api_urls().is_empty() && s.api_key.is_none());
        assert_eq!(s.reconnect_max, Duration::from_secs(10));
        assert_eq!(s.log_format, LogFormat::Text);
        assert!(s.jwt_secret.is_none(), "no sign-in unless a secret is set");
        assert_eq!(s.token_ttl, Duration::from_secs(15 * 60));
    }

    #[test]
    fn the_jwt_secret_is_read_checked_for_length_and_never_printed() {
        let secret = "a-secret-of-exactly-32-bytes-ok!";
        assert_eq!(secret.len(), 32);
        let s = Settings::load_from(None, [("WEB_JWT_SECRET", secret), ("WEB_TOKEN_TTL", "2m")])
            .expect("valid");
        assert_eq!(
            s.jwt_secret.as_ref().map(ExposeSecret::expose_secret),
            Some(secret)
        );
        assert_eq!(s.token_ttl, Duration::from_secs(120));
        let debug = format!("{s:?}");
        assert!(!debug.contains(secret), "{debug}");
        assert!(debug.contains("REDACTED"), "{debug}");

        let short = "only-31-bytes-long-secret-here!";
        let err = Settings::load_from(None, [("WEB_JWT_SECRET", short)]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("jwt_secret") && msg.contains("WEB_JWT_SECRET"),
            "{msg}"
        );
        assert!(
            !msg.contains(short),
            "the error must not echo the secret: {msg}"
        );
        // An empty variable is the same as an unset one: sign-in stays off.
        let s = Settings::load_from(None, [("WEB_JWT_SECRET", "")]).expect("valid");
        assert!(s.jwt_secret.is_none());
    }

    #[test]
    fn the_hook_secret_is_read_and_never_printed() {
        let s = Settings::load_from(None, NO_ENV).expect("defaults");
        assert!(s.hook_secret.is_none(), "no hooks unless a secret is set");
        let secret = "a-hook-secret-shared-with-the-hubs";
        let s = Settings::load_from(None, [("WEB_HOOK_SECRET", secret)]).expect("valid");
        assert_eq!(
            s.hook_secret.as_ref().map(ExposeSecret::expose_secret),
            Some(secret)
        );
        assert!(!format!("{s:?}").contains(secret));
    }

    #[test]
    fn environment_overrides_defaults_and_hub_url_wins() {
        let s = Settings::load_from(
            None,
            [
                ("WEB_LISTEN", "127.0.0.1:9999"),
                ("WEB_HUB_URL", "ws://ignored:1/ws"),
                ("HUB_URL", "wss://chat.example/ws"),
                ("WEB_TITLE", "East"),
                ("WEB_HUB_LABEL", "hub1"),
                ("WEB_RECONNECT_MAX", "2s"),
                ("HUB_LISTEN", "0.0.0.0:1"),
            ],
        )
        .expect("valid");
        assert_eq!(s.listen.port(), 9999);
        assert_eq!(
            s.hub_target(),
            HubTarget::Fixed("wss://chat.example/ws".into())
        );
        assert_eq!(s.title, "East");
        assert_eq!(s.hub_label, "hub1");
        assert_eq!(s.reconnect_max, Duration::from_secs(2));
    }

    #[test]
    fn bad_values_are_rejected_with_the_key_named() {
        let err = Settings::load_from(None, [("HUB_URL", "http://x/ws")]).unwrap_err();
        assert!(err.to_string().contains("hub_url"), "{err}");
        let err = Settings::load_from(None, [("HUB_URL", "ws://x/ws; script-src *")]).unwrap_err();
        assert!(err.to_string().contains("hub_url"), "{err}");
        let err = Settings::load_from(None, [("WEB_RECONNECT_MIN", "1m")]).unwrap_err();
        assert!(err.to_string().contains("reconnect_min"), "{err}");
        let err = Settings::load_from(None, [("WEB_REQUEST_HEADER_TIMEOUT", "0s")]).unwrap_err();
        assert!(err.to_string().contains("request_header_timeout"), "{err}");
        let err = Settings::load_from(None, [("WEB_LISTEN", "nowhere")]).unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        for ttl in ["0s", "500ms", "25h"] {
            let err = Settings::load_from(None, [("WEB_TOKEN_TTL", ttl)]).unwrap_err();
            assert!(err.to_string().contains("token_ttl"), "{ttl}: {err}");
        }
        let err = Settings::load_from(None, [("WEB_JWT_ISSUER", " ")]).unwrap_err();
        assert!(err.to_string().contains("jwt_issuer"), "{err}");
        for (key, value, named) in [
            ("WEB_HUB_PORT", "0", "hub_port"),
            ("WEB_HUB_PORT", "70000", "hub_port"),
            ("WEB_HUB_PATH", "ws", "hub_path"),
            ("WEB_HUB_PATH", "/ws; script-src *", "hub_path"),
            ("WEB_API_URLS", "https://hub1:8090", "api_urls"),
            ("WEB_API_URLS", "http://hub1:8090/api", "api_urls"),
            ("WEB_API_URLS", "http://hub1:8090", "api_key"),
        ] {
            let err = Settings::load_from(None, [(key, value)]).unwrap_err();
            assert!(err.to_string().contains(named), "{key}={value}: {err}");
        }
    }

    #[test]
    fn the_page_host_port_and_path_and_the_status_apis_are_read() {
        let key = "an-api-key-0123456789";
        let s = Settings::load_from(
            None,
            [
                ("WEB_HUB_PORT", "8081"),
                ("WEB_HUB_PATH", "/hub/ws"),
                ("WEB_API_URLS", " http://hub1:8090/, http://hub2:8090 ,"),
                ("WEB_API_KEY", key),
            ],
        )
        .expect("valid");
        assert_eq!(
            s.hub_target(),
            HubTarget::PageHost {
                port: 8081,
                path: "/hub/ws".into()
            }
        );
        assert_eq!(s.api_urls(), ["http://hub1:8090", "http://hub2:8090"]);
        assert!(!format!("{s:?}").contains(key), "the API key is redacted");
    }
}
