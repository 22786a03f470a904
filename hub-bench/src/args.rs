//! Command-line flags: `--key value` pairs (repeatable), without a parser dependency.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use crate::error::BenchError;

#[derive(Debug, Default)]
pub struct Flags {
    values: HashMap<String, Vec<String>>,
}

impl Flags {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, BenchError> {
        let mut flags = Flags::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let key = arg
                .strip_prefix("--")
                .ok_or_else(|| BenchError::Usage(format!("expected --flag, got {arg:?}")))?;
            let value = args
                .next()
                .ok_or_else(|| BenchError::Usage(format!("--{key} needs a value")))?;
            flags.values.entry(key.to_owned()).or_default().push(value);
        }
        Ok(flags)
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        // Repeated flags and comma-separated lists both work: --url a --url b, or --url a,b.
        self.values
            .get(key)
            .into_iter()
            .flatten()
            .flat_map(|v| v.split(','))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn get<T: FromStr>(&self, key: &str, default: T) -> Result<T, BenchError>
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(key).and_then(|v| v.last()) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| BenchError::Usage(format!("--{key} {v:?}: {e}"))),
        }
    }

    pub fn required(&self, key: &str) -> Result<String, BenchError> {
        self.values
            .get(key)
            .and_then(|v| v.last().cloned())
            .ok_or_else(|| BenchError::Usage(format!("--{key} is required")))
    }

    pub fn duration(&self, key: &str, default: Duration) -> Result<Duration, BenchError> {
        match self.values.get(key).and_then(|v| v.last()) {
            None => Ok(default),
            Some(v) => parse_duration(v).ok_or_else(|| {
                BenchError::Usage(format!("--{key} {v:?}: expected e.g. 500ms or 10s"))
            }),
        }
    }

    pub fn pids(&self, key: &str) -> Result<Vec<u32>, BenchError> {
        self.all(key)
            .iter()
            .map(|p| {
                p.parse()
                    .map_err(|_| BenchError::Usage(format!("--{key} {p:?}: not a pid")))
            })
            .collect()
    }
}

/// `250ms`, `10s`, `1.5s`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return None;
    };
    let v: f64 = number.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(s: &str) -> Result<Flags, BenchError> {
        Flags::parse(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn repeated_and_comma_separated_values() {
        let f = flags("--url a --url b,c --rate 5000 --pid 1,2").expect("valid");
        assert_eq!(f.all("url"), ["a", "b", "c"]);
        assert_eq!(f.get("rate", 0.0).expect("number"), 5000.0);
        assert_eq!(f.get("subscribers", 7usize).expect("default"), 7);
        assert_eq!(f.pids("pid").expect("pids"), [1, 2]);
        assert!(f.required("target").is_err());
        assert!(f.get::<u32>("url", 0).is_err());
    }

    #[test]
    fn malformed_command_lines() {
        assert!(flags("rate 5").is_err());
        assert!(flags("--rate").is_err());
        assert!(flags("--pid x").expect("parses").pids("pid").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("xs"), None);
    }
}
