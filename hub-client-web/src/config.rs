//! Settings: built-in defaults → optional TOML file (`--config PATH`) → environment (`WEB_*`, `HUB_URL`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// Every tunable of the web server. Field names are the TOML keys; `WEB_<FIELD>` is the environment
/// variable, except that the conventional `HUB_URL` also sets `hub_url` (and wins over `WEB_HUB_URL`).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// The hub's WebSocket URL as the *browser* reaches it (not as this server would): the page connects
    /// there directly, so behind Docker it is the published host port, e.g. `ws://localhost:8080/ws`.
    pub hub_url: String,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The defaults, as TOML, so the README table and the code cannot drift apart silently.
pub const DEFAULTS: &str = r#"
listen = "0.0.0.0:9081"
hub_url = "ws://localhost:8080/ws"
title = "realtime-hub chat"
hub_label = ""
reconnect_min = "500ms"
reconnect_max = "10s"
request_header_timeout = "10s"
log_format = "text"
"#;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // Not a #[source]: the message already carries it, and `{:#}` would print it twice.
    #[error("configuration: {0}")]
    Load(config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl From<config::ConfigError> for ConfigError {
    fn from(e: config::ConfigError) -> Self {
        ConfigError::Load(e)
    }
}

impl Settings {
    /// Reads defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment, for tests.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let env: HashMap<String, String> = env.into_iter().collect();
        // HUB_URL is the name compose files and the hub's docs use; honour it as is.
        if let Some(url) = env.get("HUB_URL").filter(|u| !u.is_empty()) {
            builder = builder.set_override("hub_url", url.clone())?;
        }
        let web_env: HashMap<String, String> = env
            .into_iter()
            .filter(|(k, v)| k.starts_with("WEB_") && !v.is_empty())
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("WEB")
                .prefix_separator("_")
                .source(Some(web_env)),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let url = self.hub_url.as_str();
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(ConfigError::Invalid(format!(
                "hub_url must start with ws:// or wss://, got {url:?}"
            )));
        }
        // The URL is also written into the Content-Security-Policy header, where these would split it.
        if url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || ";,'\"<>".contains(c))
        {
            return Err(ConfigError::Invalid(format!(
                "hub_url contains a character not allowed in a URL: {url:?}"
            )));
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_without_file_or_environment() {
        let s = Settings::load_from(None, env(&[])).expect("defaults are valid");
        assert_eq!(s.listen.port(), 9081);
        assert_eq!(s.hub_url, "ws://localhost:8080/ws");
        assert_eq!(s.reconnect_max, Duration::from_secs(10));
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn environment_overrides_defaults_and_hub_url_wins() {
        let s = Settings::load_from(
            None,
            env(&[
                ("WEB_LISTEN", "127.0.0.1:9999"),
                ("WEB_HUB_URL", "ws://ignored:1/ws"),
                ("HUB_URL", "wss://chat.example/ws"),
                ("WEB_TITLE", "East"),
                ("WEB_HUB_LABEL", "hub1"),
                ("WEB_RECONNECT_MAX", "2s"),
                ("HUB_LISTEN", "0.0.0.0:1"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.listen.port(), 9999);
        assert_eq!(s.hub_url, "wss://chat.example/ws");
        assert_eq!(s.title, "East");
        assert_eq!(s.hub_label, "hub1");
        assert_eq!(s.reconnect_max, Duration::from_secs(2));
    }

    #[test]
    fn bad_values_are_rejected_with_the_key_named() {
        let err = Settings::load_from(None, env(&[("HUB_URL", "http://x/ws")])).unwrap_err();
        assert!(err.to_string().contains("hub_url"), "{err}");
        let err =
            Settings::load_from(None, env(&[("HUB_URL", "ws://x/ws; script-src *")])).unwrap_err();
        assert!(err.to_string().contains("hub_url"), "{err}");
        let err = Settings::load_from(None, env(&[("WEB_RECONNECT_MIN", "1m")])).unwrap_err();
        assert!(err.to_string().contains("reconnect_min"), "{err}");
        let err =
            Settings::load_from(None, env(&[("WEB_REQUEST_HEADER_TIMEOUT", "0s")])).unwrap_err();
        assert!(err.to_string().contains("request_header_timeout"), "{err}");
        let err = Settings::load_from(None, env(&[("WEB_LISTEN", "nowhere")])).unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
    }
}
