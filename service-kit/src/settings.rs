//! Layered settings: built-in defaults (TOML) → an optional TOML file → the environment, with the
//! environment's `PREFIX_<KEY>` variables and a few conventional names (`REDIS_URL`, `HUB_URL`).

use std::collections::HashMap;
use std::path::Path;

use serde::de::DeserializeOwned;

/// Where one binary's settings come from, lowest layer first. Field names of the settings struct
/// are the TOML keys.
#[derive(Debug, Clone, Copy)]
pub struct Layers {
    /// The defaults, as TOML text.
    pub defaults: &'static str,
    /// `<PREFIX>_<KEY>` sets `key` (`HUB_SEND_QUEUE` → `send_queue`).
    pub env_prefix: &'static str,
    /// Conventional variables read as they are, `(variable, key)`: they win over `<PREFIX>_<KEY>`.
    pub named: &'static [(&'static str, &'static str)],
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // Not a #[source]: the message already carries it, and `{:#}` would print it twice.
    /// A file that cannot be read, or a value of the wrong type; the message names the key.
    #[error("configuration: {0}")]
    Load(config::ConfigError),
    /// A value of the right type that the binary refuses; the message names the key.
    #[error("configuration: {0}")]
    Invalid(String),
}

impl From<config::ConfigError> for ConfigError {
    fn from(e: config::ConfigError) -> Self {
        ConfigError::Load(e)
    }
}

impl Layers {
    /// Reads the layers with `env` as the environment (`std::env::vars()`, or a list in tests).
    /// An empty variable counts as unset, so `FOO=` in a compose file keeps the default.
    pub fn load<T, K, V>(
        &self,
        file: Option<&Path>,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Result<T, ConfigError>
    where
        T: DeserializeOwned,
        K: Into<String>,
        V: Into<String>,
    {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            self.defaults,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let env: HashMap<String, String> = env
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        // An override beats every source, whatever the order they were added in.
        for (variable, key) in self.named {
            if let Some(value) = env.get(*variable) {
                builder = builder.set_override(*key, value.clone())?;
            }
        }
        let prefix = format!("{}_", self.env_prefix);
        let prefixed: HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix(self.env_prefix)
                .prefix_separator("_")
                .source(Some(prefixed)),
        );
        Ok(builder.build()?.try_deserialize()?)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Demo {
        port: u16,
        url: Option<String>,
        #[serde(with = "humantime_serde")]
        wait: Duration,
    }

    const LAYERS: Layers = Layers {
        defaults: "port = 1\nwait = \"1s\"\n",
        env_prefix: "DEMO",
        named: &[("DEMO_URL_CONVENTIONAL", "url")],
    };

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
    fn each_layer_overrides_the_one_below() {
        let d: Demo = LAYERS.load(None, [("OTHER_PORT", "9")]).expect("defaults");
        assert_eq!((d.port, d.url, d.wait), (1, None, Duration::from_secs(1)));

        let file = temp_toml("port = 2\nwait = \"250ms\"\n");
        let d: Demo = LAYERS.load(Some(file.path()), [("X", "y")]).expect("file");
        assert_eq!((d.port, d.wait), (2, Duration::from_millis(250)));

        let d: Demo = LAYERS
            .load(Some(file.path()), [("DEMO_PORT", "3"), ("DEMO_WAIT", "2m")])
            .expect("environment");
        assert_eq!((d.port, d.wait), (3, Duration::from_secs(120)));
    }

    #[test]
    fn a_named_variable_wins_and_empty_variables_are_unset() {
        let d: Demo = LAYERS
            .load(
                None,
                [
                    ("DEMO_URL", "redis://prefixed"),
                    ("DEMO_URL_CONVENTIONAL", "redis://named"),
                    ("DEMO_PORT", ""),
                ],
            )
            .expect("valid");
        assert_eq!(d.url.as_deref(), Some("redis://named"));
        assert_eq!(d.port, 1, "an empty DEMO_PORT keeps the default");
        let d: Demo = LAYERS
            .load(
                None,
                [
                    ("DEMO_URL", "redis://prefixed"),
                    ("DEMO_URL_CONVENTIONAL", ""),
                ],
            )
            .expect("valid");
        assert_eq!(d.url.as_deref(), Some("redis://prefixed"));
    }

    #[test]
    fn errors_name_the_key_or_the_file() {
        let err = LAYERS
            .load::<Demo, _, _>(None, [("DEMO_PORT", "many")])
            .unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
        let err = LAYERS
            .load::<Demo, _, _>(None, [("DEMO_WAIT", "soon")])
            .unwrap_err();
        assert!(err.to_string().contains("wait"), "{err}");
        let missing = Path::new("/nonexistent/settings.toml");
        let err = LAYERS
            .load::<Demo, _, _>(Some(missing), [("X", "y")])
            .unwrap_err();
        assert!(err.to_string().contains("settings.toml"), "{err}");
    }
}
