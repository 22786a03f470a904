//! Reads the few figures the status page needs from a hub's `/metrics` (Prometheus text format):
//! plain samples by name, and the cross-hub lag histogram's buckets, summed over its label sets.
//!
//! Our own ~60 lines, not a parser crate, after a look at each on crates.io (December 2026):
//! - `prometheus-parse` 0.2.5 (the most downloaded): last release December 2023; it splits label
//!   sets on `,` and `=` just as this reader does (no better on escaped values), and its fix for
//!   `=` in a label value has waited as an open pull request since June 2024; it brings `chrono`,
//!   `regex`, `itertools` and `once_cell` along.
//! - `openmetrics-parser` 0.5.1 (released October 2026): LGPL-3.0, which a statically linked,
//!   MIT-licensed binary cannot take on without relinking obligations; and it refuses a whole
//!   exposition for one line it does not accept, where the page should keep the figures it can read.
//! - `nom-openmetrics` 0.3.0 (MIT, July 2026): all-or-nothing too (a sample with a timestamp fails
//!   the whole text); its Prometheus entry point refuses the `# EOF` line our hubs end with; it
//!   gives `le` back as a string to parse anyway; and 0.3.0 still prints a debug line to stderr
//!   for every infinite sample value.
//! - `prom_text_format_parser` 0.1.0: one release (December 2023), on `winnow` 0.5.
//!
//! What the page needs is small and stable (the hubs' own output, no escaped label values): a line
//! this reader cannot split is skipped, never fatal. Revisit when a maintained, permissively licensed
//! parser appears.

use std::collections::BTreeMap;

/// A scrape, reduced to what the status page reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// `realtime_hub_messages_delivered_total`.
    pub delivered: Option<f64>,
    /// `realtime_hub_redis_up` (absent on a standalone hub).
    pub redis_up: Option<bool>,
    /// The cross-hub lag histogram: cumulative count per upper bound (seconds), `+Inf` last.
    /// Empty when the hub exposes none.
    pub lag_buckets: Vec<(f64, f64)>,
}

/// The lag histogram is whichever `realtime_hub_…lag…_seconds` histogram the hub exposes (the name
/// the metrics settle on, e.g. `realtime_hub_bridge_lag_seconds`, need not be known here).
fn is_lag_bucket(name: &str) -> bool {
    name.strip_suffix("_seconds_bucket")
        .and_then(|n| n.strip_prefix("realtime_hub_"))
        .is_some_and(|n| n.contains("lag"))
}

pub fn parse(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    let mut lag: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    let mut lag_family: Option<&str> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, value) = match split_sample(line) {
            Some(s) => s,
            None => continue,
        };
        match name {
            "realtime_hub_messages_delivered_total" => scrape.delivered = Some(value),
            "realtime_hub_redis_up" => scrape.redis_up = Some(value >= 1.0),
            _ if is_lag_bucket(name) && lag_family.is_none_or(|f| f == name) => {
                lag_family = Some(name);
                let Some(le) = label(labels, "le").and_then(parse_float) else {
                    continue;
                };
                // Keyed by the bound's bits so equal bounds from several label sets add up; the
                // map is re-sorted by value below.
                let entry = lag.entry(le.to_bits()).or_insert((le, 0.0));
                entry.1 += value;
            }
            _ => {}
        }
    }
    let mut buckets: Vec<(f64, f64)> = lag.into_values().collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    scrape.lag_buckets = buckets;
    scrape
}

/// `name{labels} value [timestamp]` → (name, labels, value).
fn split_sample(line: &str) -> Option<(&str, &str, f64)> {
    let (name, labels, rest) = match line.find(['{', ' ']) {
        Some(i) if line.as_bytes()[i] == b'{' => {
            let end = line.rfind('}')?;
            (&line[..i], &line[i + 1..end], &line[end + 1..])
        }
        Some(i) => (&line[..i], "", &line[i..]),
        None => return None,
    };
    let value = rest.split_whitespace().next().and_then(parse_float)?;
    Some((name, labels, value))
}

/// The value of `key="…"` in a label set (our label values carry no escaped quotes or commas).
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// The `q` quantile of the observations between two scrapes of a cumulative histogram (`now` minus
/// `then`, bucket by bucket), interpolated inside its bucket as Prometheus' `histogram_quantile`
/// does; in the `+Inf` bucket it is the largest finite bound. `None` without observations.
pub fn quantile(q: f64, then: &[(f64, f64)], now: &[(f64, f64)]) -> Option<f64> {
    let before = |le: f64| {
        then.iter()
            .find(|(b, _)| b.to_bits() == le.to_bits())
            .map_or(0.0, |(_, c)| *c)
    };
    // A counter that went down (a restarted hub) is counted from zero.
    let deltas: Vec<(f64, f64)> = now
        .iter()
        .map(|&(le, c)| {
            let d = c - before(le);
            (le, if d < 0.0 { c } else { d })
        })
        .collect();
    let total = deltas.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in &deltas {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let in_bucket = count - lower.1;
            let fraction = if in_bucket > 0.0 {
                (rank - lower.1) / in_bucket
            } else {
                1.0
            };
            return Some(lower.0 + (le - lower.0) * fraction);
        }
        lower = (le, count);
    }
    Some(lower.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP realtime_hub_messages_delivered Frames queued for this hub's clients.
# TYPE realtime_hub_messages_delivered counter
realtime_hub_messages_delivered_total 1234
realtime_hub_redis_up 1
# TYPE realtime_hub_bridge_lag_seconds histogram
realtime_hub_bridge_lag_seconds_bucket{origin="a",le="0.001"} 1
realtime_hub_bridge_lag_seconds_bucket{origin="a",le="0.01"} 8
realtime_hub_bridge_lag_seconds_bucket{origin="a",le="+Inf"} 10
realtime_hub_bridge_lag_seconds_bucket{origin="b",le="0.001"} 0
realtime_hub_bridge_lag_seconds_bucket{origin="b",le="0.01"} 2
realtime_hub_bridge_lag_seconds_bucket{origin="b",le="+Inf"} 10
realtime_hub_bridge_lag_seconds_sum 0.5
realtime_hub_bridge_lag_seconds_count 20
realtime_hub_publish_latency_seconds_bucket{le="0.001"} 99
"#;

    #[test]
    fn reads_delivered_redis_up_and_the_lag_buckets_summed() {
        let s = parse(TEXT);
        assert_eq!(s.delivered, Some(1234.0));
        assert_eq!(s.redis_up, Some(true));
        assert_eq!(
            s.lag_buckets,
            vec![(0.001, 1.0), (0.01, 10.0), (f64::INFINITY, 20.0)]
        );
        let bare = parse("realtime_hub_connections 3\n");
        assert_eq!(bare, Scrape::default());
    }

    #[test]
    fn the_quantile_is_of_the_observations_between_two_scrapes() {
        let then = [(0.01, 0.0), (0.1, 0.0), (f64::INFINITY, 0.0)];
        // 100 observations: 90 under 10 ms, 10 between 10 and 100 ms.
        let now = [(0.01, 90.0), (0.1, 100.0), (f64::INFINITY, 100.0)];
        let p99 = quantile(0.99, &then, &now).expect("observations");
        assert!((p99 - 0.091).abs() < 1e-9, "{p99}");
        let p50 = quantile(0.5, &then, &now).expect("observations");
        assert!((p50 - 0.01 * 50.0 / 90.0).abs() < 1e-9, "{p50}");
        // Nothing new since `then`: no figure (not 0).
        assert_eq!(quantile(0.99, &now, &now), None);
        // Past the last finite bound: that bound.
        let slow = [(0.01, 0.0), (0.1, 0.0), (f64::INFINITY, 5.0)];
        assert_eq!(quantile(0.99, &then, &slow), Some(0.1));
        assert_eq!(quantile(0.99, &[], &[]), None);
    }
}
