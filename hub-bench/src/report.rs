//! The results file (one JSON object per line) rendered as Markdown: every point, ours/peer ratios at
//! equal offered load, and the issue's targets checked against the figures.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Deserialize;

use crate::load::SUSTAINABLE_P99_MS;

#[derive(Debug, Clone, Deserialize)]
pub struct LoadRow {
    pub target: String,
    pub subscribers: usize,
    pub offered_deliveries_per_s: f64,
    pub delivered_per_s: f64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub disconnects: u64,
    pub latency: LatencyRow,
    pub hub_cpu_us_per_delivery: f64,
    pub redis_cpu_us_per_delivery: f64,
    pub hub_cpu_pct: f64,
    pub tool_cpu_pct: f64,
    #[serde(default = "one")]
    pub tool_cores: usize,
    pub connect_per_s: f64,
    pub sustainable: bool,
    #[serde(default)]
    pub saturated: bool,
}

fn one() -> usize {
    1
}

impl LoadRow {
    /// The load tool itself was near its CPU limit: the point measures the tool as much as the hub.
    pub fn tool_bound(&self) -> bool {
        self.tool_cpu_pct >= 85.0 * self.tool_cores as f64
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct LatencyRow {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// Absent in results written before the tool measured its own send lag.
    #[serde(default)]
    pub send_lag_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IdleRow {
    pub target: String,
    pub connected: usize,
    pub failed: usize,
    pub connect_per_s: f64,
    pub rss_per_connection_bytes: f64,
}

#[derive(Debug, Default)]
pub struct Results {
    /// The `"kind":"machine"` line bench/run.sh writes first, if any.
    pub machine: Option<serde_json::Value>,
    pub load: Vec<LoadRow>,
    pub idle: Vec<IdleRow>,
}

impl Results {
    /// Parse a JSON-lines file; lines of an unknown kind are skipped, malformed ones are errors.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let mut out = Results::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)?;
            match v.get("kind").and_then(|k| k.as_str()) {
                Some("load") => out.load.push(serde_json::from_value(v)?),
                Some("idle") => out.idle.push(serde_json::from_value(v)?),
                Some("machine") => out.machine = Some(v),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Ours and the peer at one (subscribers, offered rate) point.
type Pair<'a> = (Option<&'a LoadRow>, Option<&'a LoadRow>);

fn key(rate: f64) -> u64 {
    rate.round() as u64
}

fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.0}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

/// Highest offered rate that was sustainable, and how many lower points were not (on a shared or
/// noisy machine a point can fail below the real limit: the table shows which).
pub fn highest_sustainable(rows: &[&LoadRow]) -> Option<(f64, usize)> {
    let best = rows
        .iter()
        .filter(|r| r.sustainable)
        .map(|r| r.offered_deliveries_per_s)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))))?;
    let failed_below = rows
        .iter()
        .filter(|r| !r.sustainable && r.offered_deliveries_per_s < best)
        .count();
    Some((best, failed_below))
}

pub fn render(results: &Results, ours: &str, peer: &str) -> String {
    let mut s = String::new();
    if let Some(m) = &results.machine {
        let field = |k: &str| {
            m.get(k)
                .map(|v| v.to_string().trim_matches('"').to_owned())
                .unwrap_or_default()
        };
        let _ = writeln!(
            s,
            "Machine: {} CPUs ({}), kernel {}, servers/tool pinned to separate CPUs: {}; node {}, redis {}; {} per point, {} publishers.\n",
            field("nproc"),
            field("cpu"),
            field("kernel"),
            if field("pinned") == "1" { "yes" } else { "no" },
            field("node"),
            field("redis"),
            field("duration"),
            field("publishers"),
        );
    }
    let _ = writeln!(
        s,
        "| subs | offered del/s | target | delivered/s | p50 ms | p99 ms | p99.9 ms | lost | dup | reord | hub µs/del | redis µs/del | hub CPU | tool CPU | ok |"
    );
    let _ = writeln!(
        s,
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|"
    );
    let mut rows: Vec<&LoadRow> = results.load.iter().collect();
    rows.sort_by(|a, b| {
        (
            a.subscribers,
            key(a.offered_deliveries_per_s),
            a.target != ours,
        )
            .cmp(&(
                b.subscribers,
                key(b.offered_deliveries_per_s),
                b.target != ours,
            ))
    });
    for r in &rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {:.2} | {:.2} | {:.0}% | {:.0}% | {} |",
            r.subscribers,
            human(r.offered_deliveries_per_s),
            r.target,
            human(r.delivered_per_s),
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.latency.p999_ms,
            r.lost,
            r.duplicated,
            r.reordered,
            r.hub_cpu_us_per_delivery,
            r.redis_cpu_us_per_delivery,
            r.hub_cpu_pct,
            r.tool_cpu_pct,
            match (r.sustainable, r.disconnects > 0, r.tool_bound()) {
                (true, _, false) => "✓",
                (true, _, true) => "✓ (tool-bound)",
                (false, true, _) => "✗ drops",
                (false, false, false) => "✗",
                (false, false, true) => "✗ (tool-bound)",
            },
        );
    }

    // Ratios where both targets ran the same point.
    let mut pairs: BTreeMap<(usize, u64), Pair<'_>> = BTreeMap::new();
    for r in &rows {
        let e = pairs
            .entry((r.subscribers, key(r.offered_deliveries_per_s)))
            .or_default();
        if r.target == ours {
            e.0 = Some(r);
        } else if r.target == peer {
            e.1 = Some(r);
        }
    }
    let _ = writeln!(
        s,
        "\nRatios {ours}/{peer} at equal offered load (> 1 means {ours} is better):\n"
    );
    let _ = writeln!(
        s,
        "| subs | offered del/s | delivered/s | p99 latency (peer÷ours) | hub CPU per delivery (peer÷ours) |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|");
    for ((subs, rate), pair) in &pairs {
        if let (Some(o), Some(p)) = pair {
            let ratio = |a: f64, b: f64| {
                if b > 0.0 {
                    format!("{:.2}×", a / b)
                } else {
                    "–".into()
                }
            };
            let _ = writeln!(
                s,
                "| {subs} | {} | {} | {} | {} |",
                human(*rate as f64),
                ratio(o.delivered_per_s, p.delivered_per_s),
                ratio(p.latency.p99_ms, o.latency.p99_ms),
                ratio(p.hub_cpu_us_per_delivery, o.hub_cpu_us_per_delivery),
            );
        }
    }

    if !results.idle.is_empty() {
        let _ = writeln!(
            s,
            "\nIdle connections (hub RSS growth ÷ connections, summed over both instances):\n"
        );
        let _ = writeln!(
            s,
            "| target | connected | failed | connect/s | RSS per connection |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        for i in &results.idle {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.0} | {:.1} KiB |",
                i.target,
                i.connected,
                i.failed,
                i.connect_per_s,
                i.rss_per_connection_bytes / 1024.0
            );
        }
    }

    let _ = writeln!(s, "\nTargets:\n");
    for line in targets(results, ours, peer) {
        let _ = writeln!(s, "- {line}");
    }
    s
}

fn failed_note(target: &str, failed_below: usize) -> String {
    if failed_below == 0 {
        String::new()
    } else {
        format!("; {target} failed {failed_below} lower point(s)")
    }
}

/// The issue's four targets, each as one line saying met / missed with the figures.
pub fn targets(results: &Results, ours: &str, peer: &str) -> Vec<String> {
    let mut out = Vec::new();
    let verdict = |ok: bool| if ok { "MET" } else { "MISSED" };
    // The main series is the subscriber count with the most points.
    let mut per_subs: BTreeMap<usize, usize> = BTreeMap::new();
    for r in &results.load {
        *per_subs.entry(r.subscribers).or_default() += 1;
    }
    if let Some((&subs, _)) = per_subs
        .iter()
        .max_by_key(|(s, n)| (**n, std::cmp::Reverse(**s)))
    {
        let series = |t: &str| -> Vec<&LoadRow> {
            results
                .load
                .iter()
                .filter(|r| r.target == t && r.subscribers == subs)
                .collect()
        };
        let (o, p) = (series(ours), series(peer));
        let max_o = o
            .iter()
            .map(|r| r.offered_deliveries_per_s)
            .fold(0.0, f64::max);
        match (highest_sustainable(&o), highest_sustainable(&p)) {
            (Some((a, fa)), Some((b, fb))) => out.push(format!(
                "{} highest sustainable rate (no loss, p99 ≤ {SUSTAINABLE_P99_MS} ms) at {subs} subscribers: \
                 {ours} {}{} vs {peer} {} = {:.1}× (target ≥ 3×){}{}",
                verdict(a / b >= 3.0),
                human(a),
                if a >= max_o { " (the highest point tested: a lower bound)" } else { "" },
                human(b),
                a / b,
                failed_note(ours, fa),
                failed_note(peer, fb),
            )),
            (Some((a, fa)), None) => out.push(format!(
                "MET highest sustainable rate at {subs} subscribers: {ours} {}, {peer} sustained no point tested{}",
                human(a),
                failed_note(ours, fa)
            )),
            (None, _) => out.push(format!("MISSED {ours} sustained no point at {subs} subscribers")),
        }
        let lossless = |rows: &[&LoadRow]| {
            rows.iter()
                .filter(|r| !r.saturated)
                .map(|r| r.delivered_per_s)
                .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))))
        };
        match (lossless(&o), lossless(&p)) {
            (Some(a), Some(b)) => out.push(format!(
                "throughput (highest delivered/s with nothing lost or dropped, any latency) at {subs} subscribers: \
                 {ours} {} vs {peer} {} = {:.1}×",
                human(a),
                human(b),
                a / b
            )),
            (a, b) => out.push(format!(
                "throughput at {subs} subscribers: {ours} {}, {peer} {}",
                a.map_or("none".into(), human),
                b.map_or("none".into(), human)
            )),
        }
        if let Some(r) = o.iter().find(|r| key(r.offered_deliveries_per_s) == 50_000) {
            let lag = r.latency.send_lag_p99_ms.map_or(String::new(), |lag| {
                format!("; of it, the load tool's own send lag p99 {lag:.2} ms")
            });
            out.push(format!(
                "{} p99 at 50k deliveries/s: {:.2} ms (target ≤ 10 ms{lag})",
                verdict(r.latency.p99_ms <= 10.0 && r.lost == 0),
                r.latency.p99_ms
            ));
        } else {
            out.push("no point at 50k deliveries/s: p99 target not checked".into());
        }
        let limit = highest_sustainable(&o).map_or(0.0, |(r, _)| r);
        let below: Vec<_> = results
            .load
            .iter()
            .filter(|r| {
                r.target == ours && r.offered_deliveries_per_s <= limit && r.subscribers == subs
            })
            .collect();
        let (dups, reorders) = below
            .iter()
            .fold((0, 0), |(d, q), r| (d + r.duplicated, q + r.reordered));
        out.push(format!(
            "{} duplicates / reorders of {ours} at the {} points up to saturation: {dups} / {reorders} (target 0 / 0)",
            verdict(dups == 0 && reorders == 0 && !below.is_empty()),
            below.len()
        ));
    }
    if let Some(i) = results.idle.iter().find(|i| i.target == ours) {
        out.push(format!(
            "{} RSS per idle connection at {} connections: {:.1} KiB (target ≤ 8 KiB)",
            verdict(i.rss_per_connection_bytes <= 8192.0 && i.failed == 0),
            i.connected,
            i.rss_per_connection_bytes / 1024.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: &str, rate: f64, p99: f64, ok: bool) -> String {
        serde_json::json!({
            "kind": "load", "target": target, "subscribers": 1000, "offered_deliveries_per_s": rate,
            "delivered_per_s": rate, "lost": u64::from(!ok), "duplicated": 0, "reordered": 0, "disconnects": 0,
            "latency": {"p50_ms": 1.0, "p99_ms": p99, "p999_ms": p99 * 2.0},
            "hub_cpu_us_per_delivery": 1.0, "redis_cpu_us_per_delivery": 0.1, "hub_cpu_pct": 50.0,
            "tool_cpu_pct": 40.0, "connect_per_s": 5000.0, "sustainable": ok, "saturated": !ok && p99 > 100.0
        })
        .to_string()
    }

    #[test]
    fn ratios_and_targets_from_a_results_file() {
        let lines = [
            row("ours", 50_000.0, 2.0, true),
            row("ours", 100_000.0, 3.0, true),
            row("ours", 400_000.0, 9.0, true),
            row("ours", 800_000.0, 90.0, false),
            row("socketio", 50_000.0, 8.0, true),
            row("socketio", 100_000.0, 30.0, true),
            row("socketio", 400_000.0, 900.0, false),
            r#"{"kind":"idle","target":"ours","connected":10000,"failed":0,"connect_per_s":9000,"rss_per_connection_bytes":6144}"#.to_owned(),
            r#"{"kind":"something-else"}"#.to_owned(),
        ];
        let results = Results::parse(&lines.join("\n")).expect("valid");
        assert_eq!(results.load.len(), 7);
        let table = render(&results, "ours", "socketio");
        assert!(table.contains("| 1000 | 800k | ours | 800k |"), "{table}");
        assert!(!table.contains("tool-bound"), "{table}");
        assert!(
            table.contains("| 1000 | 50k | 1.00× | 4.00× | 1.00× |"),
            "{table}"
        );
        let t = targets(&results, "ours", "socketio");
        assert!(
            t[0].starts_with("MET") && t[0].contains("400k vs socketio 100k = 4.0×"),
            "{t:?}"
        );
        assert!(t[1].contains("ours 800k vs socketio 100k = 8.0×"), "{t:?}");
        assert!(t[2].starts_with("MET") && t[2].contains("2.00 ms"), "{t:?}");
        assert!(
            t[3].starts_with("MET") && t[3].contains("3 points"),
            "{t:?}"
        );
        assert!(t[4].starts_with("MET") && t[4].contains("6.0 KiB"), "{t:?}");
    }

    #[test]
    fn the_tools_send_lag_is_shown_beside_the_p99_target_when_measured() {
        let old = row("ours", 50_000.0, 12.0, true);
        let new = old.replace(
            r#""p999_ms":24.0"#,
            r#""p999_ms":24.0,"send_lag_p99_ms":1.4"#,
        );
        assert_ne!(old, new, "the row has the field to extend");
        let t = targets(&Results::parse(&old).expect("valid"), "ours", "socketio");
        assert!(
            t[2].starts_with("MISSED") && !t[2].contains("send lag"),
            "{t:?}"
        );
        let t = targets(&Results::parse(&new).expect("valid"), "ours", "socketio");
        assert!(
            t[2].contains(
                "12.00 ms (target ≤ 10 ms; of it, the load tool's own send lag p99 1.40 ms)"
            ),
            "{t:?}"
        );
    }

    #[test]
    fn a_failure_below_the_highest_sustainable_point_is_reported() {
        let lines = [
            row("ours", 50_000.0, 2.0, true),
            row("ours", 100_000.0, 80.0, false),
            row("ours", 200_000.0, 2.0, true),
        ];
        let results = Results::parse(&lines.join("\n")).expect("valid");
        let rows: Vec<_> = results.load.iter().collect();
        assert_eq!(highest_sustainable(&rows), Some((200_000.0, 1)));
        let t = targets(&results, "ours", "socketio");
        assert!(
            t[0].starts_with("MET")
                && t[0].contains(
                    "ours 200k, socketio sustained no point tested; ours failed 1 lower point(s)"
                ),
            "{t:?}"
        );
    }

    #[test]
    fn machine_line_and_tool_bound_points_are_shown() {
        let mut busy: serde_json::Value =
            serde_json::from_str(&row("ours", 50_000.0, 2.0, true)).expect("json");
        busy["tool_cpu_pct"] = 95.0.into();
        let lines = [
            r#"{"kind":"machine","nproc":2,"cpu":"AMD EPYC","kernel":"6.1","pinned":1,"node":"v20","redis":"7.0","duration":"8s","publishers":4}"#.to_owned(),
            busy.to_string(),
        ];
        let table = render(
            &Results::parse(&lines.join("\n")).expect("valid"),
            "ours",
            "socketio",
        );
        assert!(
            table.starts_with(
                "Machine: 2 CPUs (AMD EPYC), kernel 6.1, servers/tool pinned to separate CPUs: yes"
            ),
            "{table}"
        );
        assert!(table.contains("| ✓ (tool-bound) |"), "{table}");
    }

    #[test]
    fn missed_targets_say_so() {
        let lines = [
            row("ours", 50_000.0, 12.0, true),
            row("socketio", 50_000.0, 8.0, true),
        ];
        let results = Results::parse(&lines.join("\n")).expect("valid");
        let t = targets(&results, "ours", "socketio");
        assert!(t[0].starts_with("MISSED"), "{t:?}");
        assert!(t[2].starts_with("MISSED"), "{t:?}");
        assert!(Results::parse("{not json").is_err());
    }
}
