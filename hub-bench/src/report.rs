//! The results file (one JSON object per line) rendered as Markdown: every point, ours/peer ratios at
//! equal offered load, history on against history off (per point, the highest sustainable rate per
//! room size, and where Redis spends its time), and the issues' targets checked against the figures.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Deserialize;

use crate::load::SUSTAINABLE_P99_MS;
use crate::redisstat::CommandStat;

/// The history targets (issue 11): at this many subscribers, history on must sustain at least this
/// share of the rate history off sustains.
pub const HISTORY_TARGETS: &[(usize, f64)] = &[(1000, 0.80), (10, 0.50)];

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
    /// Absent in results written before the tool measured per message (and Redis's own statistics).
    #[serde(default)]
    pub redis_cpu_us_per_msg: Option<f64>,
    #[serde(default)]
    pub redis_commands: Vec<CommandStat>,
    pub hub_cpu_pct: f64,
    #[serde(default)]
    pub redis_cpu_pct: f64,
    pub tool_cpu_pct: f64,
    /// Absent in results written before the tool watched the rest of the machine.
    #[serde(default)]
    pub other_cpu_pct: f64,
    #[serde(default)]
    pub disturbed: bool,
    #[serde(default = "one")]
    pub tool_cores: usize,
    pub connect_per_s: f64,
    #[serde(default)]
    pub offered_msgs_per_s: f64,
    /// Seconds of sending.
    #[serde(default)]
    pub duration_s: f64,
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
    /// The last run of each (target, subscribers, offered rate) point: what every figure uses.
    pub load: Vec<LoadRow>,
    /// Earlier runs of a point that was run again (bench/run.sh repeats a point that failed while
    /// something else took the CPU): shown in the table, used for nothing else.
    pub repeated: Vec<LoadRow>,
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
        let mut latest: Vec<LoadRow> = Vec::with_capacity(out.load.len());
        for row in std::mem::take(&mut out.load) {
            let point = |r: &LoadRow| {
                (
                    r.target.clone(),
                    r.subscribers,
                    key(r.offered_deliveries_per_s),
                )
            };
            if let Some(at) = latest.iter().position(|r| point(r) == point(&row)) {
                out.repeated.push(std::mem::replace(&mut latest[at], row));
            } else {
                latest.push(row);
            }
        }
        out.load = latest;
        Ok(out)
    }
}

/// The names of the targets a report compares: the hub as shipped, the peer, and the hub with history
/// off (the baseline history is measured against).
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    pub ours: &'a str,
    pub peer: &'a str,
    pub baseline: &'a str,
}

impl Names<'_> {
    /// Table order at one point: ours, the baseline, the peer, anything else.
    fn rank(&self, target: &str) -> u8 {
        match target {
            t if t == self.ours => 0,
            t if t == self.baseline => 1,
            t if t == self.peer => 2,
            _ => 3,
        }
    }
}

/// Two targets at one (subscribers, offered rate) point.
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

/// The points of one target at one room size.
fn series<'a>(results: &'a Results, target: &str, subs: usize) -> Vec<&'a LoadRow> {
    results
        .load
        .iter()
        .filter(|r| r.target == target && r.subscribers == subs)
        .collect()
}

/// Rows of `a` and `b` at the same (subscribers, offered rate), in order.
fn pairs<'a>(rows: &[&'a LoadRow], a: &str, b: &str) -> BTreeMap<(usize, u64), Pair<'a>> {
    let mut out: BTreeMap<(usize, u64), Pair<'a>> = BTreeMap::new();
    for r in rows {
        let k = (r.subscribers, key(r.offered_deliveries_per_s));
        if r.target == a {
            out.entry(k).or_default().0 = Some(r);
        } else if r.target == b {
            out.entry(k).or_default().1 = Some(r);
        }
    }
    out.retain(|_, (x, y)| x.is_some() && y.is_some());
    out
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "–".into()
    }
}

fn ok_mark(r: &LoadRow) -> String {
    let mark = match (r.sustainable, r.disconnects > 0, r.tool_bound()) {
        (true, _, false) => "✓",
        (true, _, true) => "✓ (tool-bound)",
        (false, true, _) => "✗ drops",
        (false, false, false) => "✗",
        (false, false, true) => "✗ (tool-bound)",
    };
    if r.disturbed {
        format!("{mark} (disturbed: other {:.0}%)", r.other_cpu_pct)
    } else {
        mark.to_owned()
    }
}

fn per_msg(per_msg: Option<f64>, per_delivery: f64, subscribers: usize) -> f64 {
    // Older results have only the per-delivery figure; deliveries ≈ messages × subscribers.
    per_msg.unwrap_or(per_delivery * subscribers as f64)
}

pub fn render(results: &Results, names: Names<'_>) -> String {
    let peer = names.peer;
    let mut s = String::new();
    if let Some(m) = &results.machine {
        let field = |k: &str| {
            m.get(k)
                .map(|v| v.to_string().trim_matches('"').to_owned())
                .unwrap_or_default()
        };
        let hub = field("hub");
        let _ = writeln!(
            s,
            "Machine: {} CPUs ({}), kernel {}, servers/tool pinned to separate CPUs: {}; node {}, redis {}; {} per point, {} publishers{}.\n",
            field("nproc"),
            field("cpu"),
            field("kernel"),
            match (field("pinned").as_str(), field("redis_cpu").as_str()) {
                ("1", "1") => "yes, Redis on the tool's CPU",
                ("1", _) => "yes",
                _ => "no",
            },
            field("node"),
            field("redis"),
            field("duration"),
            field("publishers"),
            if hub.is_empty() {
                String::new()
            } else {
                format!("; hub-server {hub}")
            },
        );
    }
    if !results.load.is_empty() {
        let _ = writeln!(
            s,
            "| subs | offered del/s | target | delivered/s | p50 ms | p99 ms | p99.9 ms | lost | dup | reord | hub µs/del | redis µs/del | hub CPU | redis CPU | tool CPU | ok |"
        );
        let _ = writeln!(
            s,
            "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|"
        );
    }
    let mut rows: Vec<&LoadRow> = results.load.iter().collect();
    rows.sort_by_key(|r| {
        (
            r.subscribers,
            key(r.offered_deliveries_per_s),
            names.rank(&r.target),
        )
    });
    let mut shown: Vec<(&LoadRow, bool)> = rows
        .iter()
        .map(|r| (*r, false))
        .chain(results.repeated.iter().map(|r| (r, true)))
        .collect();
    // Stable: a repeated run comes right before the run that replaced it.
    shown.sort_by_key(|(r, repeated)| {
        (
            r.subscribers,
            key(r.offered_deliveries_per_s),
            names.rank(&r.target),
            !repeated,
        )
    });
    for (r, repeated) in shown {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {:.2} | {:.2} | {:.0}% | {:.0}% | {:.0}% | {} |",
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
            r.redis_cpu_pct,
            r.tool_cpu_pct,
            if repeated {
                format!("{}, run again", ok_mark(r))
            } else {
                ok_mark(r)
            },
        );
    }

    // Ratios against the peer where both ran the same point, for the hub as shipped and without history.
    for variant in [names.ours, names.baseline] {
        let pairs = pairs(&rows, variant, peer);
        if pairs.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "\nRatios {variant}/{peer} at equal offered load (> 1 means {variant} is better):\n"
        );
        let _ = writeln!(
            s,
            "| subs | offered del/s | delivered/s | p99 latency (peer÷ours) | hub CPU per delivery (peer÷ours) |"
        );
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|");
        for ((subs, rate), pair) in &pairs {
            if let (Some(o), Some(p)) = pair {
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
    }

    s.push_str(&history(results, &rows, names));

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
    for line in targets(results, names) {
        let _ = writeln!(s, "- {line}");
    }
    s
}

/// History on (`ours`) against history off (`baseline`): every point both ran, the highest
/// sustainable rate per room size, and what Redis spent its time on with history on.
fn history(results: &Results, rows: &[&LoadRow], names: Names<'_>) -> String {
    let Names { ours, baseline, .. } = names;
    let mut s = String::new();
    let both = pairs(rows, ours, baseline);
    if both.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nHistory on ({ours}) vs off ({baseline}) at equal offered load: the hubs' CPU per delivery \
         (both instances), Redis's per message sent (history is one Redis step per message):\n"
    );
    let _ = writeln!(
        s,
        "| subs | offered del/s | msgs/s | p99 ms on / off | hub µs/del on / off | redis µs/msg on / off | Redis µs/call on (top command) | ok on / off |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---|:-:|");
    for ((subs, rate), pair) in &both {
        let (Some(on), Some(off)) = pair else {
            continue;
        };
        let top = on.redis_commands.first().map_or("–".to_owned(), |c| {
            format!("{} {:.2}", c.command, c.usec_per_call)
        });
        let _ = writeln!(
            s,
            "| {subs} | {} | {} | {:.2} / {:.2} | {:.2} / {:.2} | {:.1} / {:.1} | {top} | {} / {} |",
            human(*rate as f64),
            human(*rate as f64 / *subs as f64),
            on.latency.p99_ms,
            off.latency.p99_ms,
            on.hub_cpu_us_per_delivery,
            off.hub_cpu_us_per_delivery,
            per_msg(on.redis_cpu_us_per_msg, on.redis_cpu_us_per_delivery, *subs),
            per_msg(
                off.redis_cpu_us_per_msg,
                off.redis_cpu_us_per_delivery,
                *subs
            ),
            ok_mark(on),
            ok_mark(off),
        );
    }

    // Where Redis spends its time with history on, at the highest rate history on sustained.
    let mut sizes: Vec<usize> = both.keys().map(|(subs, _)| *subs).collect();
    sizes.dedup();
    for subs in sizes {
        let on = series(results, ours, subs);
        let Some((best, _)) = highest_sustainable(&on) else {
            continue;
        };
        let Some(r) = on
            .iter()
            .find(|r| key(r.offered_deliveries_per_s) == key(best))
        else {
            continue;
        };
        // Messages go out during the send window only: rates are per second of it.
        let wall = r.duration_s;
        if r.redis_commands.is_empty() || wall <= 0.0 {
            continue;
        }
        let _ = writeln!(
            s,
            "\nRedis with history on, {subs} subscribers at {} deliveries/s ({} msgs/s), Redis's own \
             command statistics per second of sending; a script's time includes the commands it ran, \
             which are also counted on their own lines:\n",
            human(best),
            human(best / subs as f64),
        );
        let _ = writeln!(s, "| command | calls/s | µs/call | % of a core |");
        let _ = writeln!(s, "|---|---:|---:|---:|");
        // Commands called at least once a second: the message path, not the odd housekeeping call.
        for c in r
            .redis_commands
            .iter()
            .filter(|c| c.calls as f64 >= wall)
            .take(12)
        {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.2} | {:.1}% |",
                c.command,
                c.calls as f64 / wall,
                c.usec_per_call,
                100.0 * c.usec as f64 / 1e6 / wall,
            );
        }
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

fn verdict(ok: bool) -> &'static str {
    if ok { "MET" } else { "MISSED" }
}

/// The issues' targets, each as one line saying met / missed with the figures: against the peer
/// (wave 1), then history on against off (issue 11).
pub fn targets(results: &Results, names: Names<'_>) -> Vec<String> {
    let Names { ours, peer, .. } = names;
    let mut out = Vec::new();
    // The main series is the subscriber count where the peer ran the most points (the most points
    // of any target when there is no peer).
    let mut per_subs: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for r in &results.load {
        let e = per_subs.entry(r.subscribers).or_default();
        e.0 += usize::from(r.target == peer);
        e.1 += 1;
    }
    if let Some((&subs, _)) = per_subs
        .iter()
        .max_by_key(|(s, n)| (**n, std::cmp::Reverse(**s)))
    {
        let p = series(results, peer, subs);
        for variant in [ours, names.baseline] {
            let o = series(results, variant, subs);
            if !o.is_empty() {
                out.push(peer_rate_target(variant, peer, subs, &o, &p));
            }
        }
        let o = series(results, ours, subs);
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
    }
    for variant in [ours, names.baseline] {
        if let Some(line) = order_target(results, variant) {
            out.push(line);
        }
    }
    if let Some(i) = results.idle.iter().find(|i| i.target == ours) {
        out.push(format!(
            "{} RSS per idle connection at {} connections: {:.1} KiB (target ≤ 8 KiB)",
            verdict(i.rss_per_connection_bytes <= 8192.0 && i.failed == 0),
            i.connected,
            i.rss_per_connection_bytes / 1024.0
        ));
    }
    out.extend(history_targets(results, names));
    out
}

/// Highest sustainable rate of `ours` against the peer's (wave 1's target: at least 3×).
fn peer_rate_target(ours: &str, peer: &str, subs: usize, o: &[&LoadRow], p: &[&LoadRow]) -> String {
    match (highest_sustainable(o), highest_sustainable(p)) {
        (Some((a, fa)), Some((b, fb))) => format!(
            "{} highest sustainable rate (no loss, p99 ≤ {SUSTAINABLE_P99_MS} ms) at {subs} subscribers: \
             {ours} {}{} vs {peer} {} = {:.1}× (target ≥ 3×){}{}",
            verdict(a / b >= 3.0),
            human(a),
            if a >= max_rate(o) {
                " (the highest point tested: a lower bound)"
            } else {
                ""
            },
            human(b),
            a / b,
            failed_note(ours, fa),
            failed_note(peer, fb),
        ),
        (Some((a, fa)), None) => format!(
            "MET highest sustainable rate at {subs} subscribers: {ours} {}, {peer} sustained no point tested{}",
            human(a),
            failed_note(ours, fa)
        ),
        (None, _) => format!("MISSED {ours} sustained no point at {subs} subscribers"),
    }
}

fn max_rate(rows: &[&LoadRow]) -> f64 {
    rows.iter()
        .map(|r| r.offered_deliveries_per_s)
        .fold(0.0, f64::max)
}

/// No duplicates and no reorders at any point up to a target's highest sustainable rate, in every
/// room size it ran.
fn order_target(results: &Results, target: &str) -> Option<String> {
    let mut sizes: Vec<usize> = results
        .load
        .iter()
        .filter(|r| r.target == target)
        .map(|r| r.subscribers)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut below = Vec::new();
    for subs in sizes {
        let rows = series(results, target, subs);
        let limit = highest_sustainable(&rows).map_or(0.0, |(r, _)| r);
        below.extend(
            rows.into_iter()
                .filter(|r| r.offered_deliveries_per_s <= limit),
        );
    }
    let (dups, reorders) = below
        .iter()
        .fold((0, 0), |(d, q), r| (d + r.duplicated, q + r.reordered));
    (!results.load.iter().all(|r| r.target != target)).then(|| {
        format!(
            "{} duplicates / reorders of {target} at the {} points up to saturation: {dups} / {reorders} (target 0 / 0)",
            verdict(dups == 0 && reorders == 0 && !below.is_empty()),
            below.len()
        )
    })
}

/// Issue 11: the highest sustainable rate with history on is at least a share of history off's.
pub fn history_targets(results: &Results, names: Names<'_>) -> Vec<String> {
    let Names { ours, baseline, .. } = names;
    let mut sizes: Vec<usize> = results.load.iter().map(|r| r.subscribers).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes.dedup();
    let mut out = Vec::new();
    for subs in sizes {
        let (on, off) = (series(results, ours, subs), series(results, baseline, subs));
        if on.is_empty() || off.is_empty() {
            continue;
        }
        let goal = HISTORY_TARGETS
            .iter()
            .find(|(n, _)| *n == subs)
            .map(|(_, share)| *share);
        let (best_on, best_off) = (highest_sustainable(&on), highest_sustainable(&off));
        if goal.is_none() && best_on.is_none() && best_off.is_none() {
            continue;
        }
        let line = match (best_on, best_off) {
            (Some((a, fa)), Some((b, fb))) => {
                let share = a / b;
                let bound = match (a >= max_rate(&on), b >= max_rate(&off)) {
                    (true, false) => " (history on at its highest point tested: a lower bound)",
                    (false, true) => " (history off at its highest point tested: an upper bound)",
                    (true, true) => {
                        " (both sustained the highest rate tested: their limits lie higher)"
                    }
                    (false, false) => "",
                };
                format!(
                    "{}history on vs off, highest sustainable rate at {subs} subscribers: {ours} {} vs {baseline} {} = {:.0} %{}{bound}{}{}",
                    goal.map_or(String::new(), |g| format!("{} ", verdict(share >= g))),
                    human(a),
                    human(b),
                    100.0 * share,
                    goal.map_or(String::new(), |g| format!(" (target ≥ {:.0} %)", 100.0 * g)),
                    failed_note(ours, fa),
                    failed_note(baseline, fb),
                )
            }
            (None, Some(_)) => format!(
                "{}{ours} (history on) sustained no point at {subs} subscribers",
                goal.map_or("", |_| "MISSED ")
            ),
            (_, None) => format!(
                "{baseline} (history off) sustained no point at {subs} subscribers: no ratio"
            ),
        };
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: Names<'static> = Names {
        ours: "ours",
        peer: "socketio",
        baseline: "ours-nohist",
    };

    fn row(target: &str, rate: f64, p99: f64, ok: bool) -> String {
        row_at(target, 1000, rate, p99, ok)
    }

    fn row_at(target: &str, subscribers: usize, rate: f64, p99: f64, ok: bool) -> String {
        serde_json::json!({
            "kind": "load", "target": target, "subscribers": subscribers, "offered_deliveries_per_s": rate,
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
        let table = render(&results, NAMES);
        assert!(table.contains("| 1000 | 800k | ours | 800k |"), "{table}");
        assert!(!table.contains("tool-bound"), "{table}");
        assert!(
            table.contains("| 1000 | 50k | 1.00× | 4.00× | 1.00× |"),
            "{table}"
        );
        let t = targets(&results, NAMES);
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
        let t = targets(&Results::parse(&old).expect("valid"), NAMES);
        assert!(
            t[2].starts_with("MISSED") && !t[2].contains("send lag"),
            "{t:?}"
        );
        let t = targets(&Results::parse(&new).expect("valid"), NAMES);
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
        let t = targets(&results, NAMES);
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
            &Results::parse(&lines.join(
                "
",
            ))
            .expect("valid"),
            NAMES,
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
        let t = targets(&results, NAMES);
        assert!(t[0].starts_with("MISSED"), "{t:?}");
        assert!(t[2].starts_with("MISSED"), "{t:?}");
        assert!(Results::parse("{not json").is_err());
    }

    #[test]
    fn history_on_against_off_per_room_size() {
        let mut with_redis: serde_json::Value =
            serde_json::from_str(&row_at("ours", 10, 100_000.0, 5.0, true)).expect("json");
        with_redis["duration_s"] = 10.0.into();
        with_redis["redis_cpu_us_per_msg"] = 12.5.into();
        with_redis["redis_commands"] = serde_json::json!([
            {"command": "evalsha", "calls": 100_000, "usec": 1_200_000, "usec_per_call": 12.0},
            {"command": "lpush", "calls": 100_000, "usec": 30_000, "usec_per_call": 0.3},
            {"command": "zadd", "calls": 2, "usec": 10, "usec_per_call": 5.0},
        ]);
        let lines = [
            row("ours", 200_000.0, 20.0, true),
            row("ours", 400_000.0, 90.0, false),
            row("ours-nohist", 200_000.0, 20.0, true),
            row("ours-nohist", 240_000.0, 30.0, true),
            row("ours-nohist", 400_000.0, 90.0, false),
            with_redis.to_string(),
            row_at("ours", 10, 200_000.0, 90.0, false),
            row_at("ours-nohist", 10, 100_000.0, 5.0, true),
            row_at("ours-nohist", 10, 300_000.0, 5.0, true),
            row_at("ours-nohist", 10, 400_000.0, 90.0, false),
        ];
        let results = Results::parse(&lines.join("\n")).expect("valid");
        let t = history_targets(&results, NAMES);
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(
            t[0].starts_with("MET history on vs off, highest sustainable rate at 1000 subscribers: ours 200k vs ours-nohist 240k = 83 % (target ≥ 80 %)"),
            "{t:?}"
        );
        assert!(
            t[1].starts_with("MISSED history on vs off, highest sustainable rate at 10 subscribers: ours 100k vs ours-nohist 300k = 33 % (target ≥ 50 %)"),
            "{t:?}"
        );
        let report = render(&results, NAMES);
        assert!(
            report.contains("| 10 | 100k | 10k | 5.00 / 5.00 | 1.00 / 1.00 | 12.5 / 1.0 | evalsha 12.00 | ✓ / ✓ |"),
            "Redis's CPU per message, measured or derived from per delivery: {report}"
        );
        assert!(
            report.contains("| 1000 | 400k | 400 | 90.00 / 90.00 |"),
            "{report}"
        );
        assert!(
            report.contains(
                "| evalsha | 10000 | 12.00 | 12.0% |\n| lpush | 10000 | 0.30 | 0.3% |\n\n"
            ),
            "Redis's commands at history on's best point, housekeeping left out: {report}"
        );
        assert!(
            !report.contains("Ratios ours-nohist/socketio"),
            "no peer rows: {report}"
        );
    }

    #[test]
    fn a_point_run_again_counts_once_and_is_shown_twice() {
        let mut disturbed: serde_json::Value =
            serde_json::from_str(&row("ours", 400_000.0, 90.0, false)).expect("json");
        disturbed["disturbed"] = true.into();
        disturbed["other_cpu_pct"] = 63.0.into();
        let lines = [
            row("ours", 200_000.0, 20.0, true),
            disturbed.to_string(),
            row("ours", 400_000.0, 30.0, true),
        ];
        let results = Results::parse(&lines.join("\n")).expect("valid");
        assert_eq!((results.load.len(), results.repeated.len()), (2, 1));
        let rows: Vec<_> = results.load.iter().collect();
        assert_eq!(highest_sustainable(&rows), Some((400_000.0, 0)));
        let table = render(&results, NAMES);
        let first = table
            .find("✗ (disturbed: other 63%), run again |")
            .expect("the disturbed run, marked");
        let last = table
            .find("| 1000 | 400k | ours | 400k | 1.00 | 30.00 |")
            .expect("the run that counts");
        assert!(first < last, "{table}");
    }
}
