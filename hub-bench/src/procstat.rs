//! Process CPU time and resident memory from /proc, for the hubs, Redis and the tool itself.

use crate::error::BenchError;

/// USER_HZ: the unit of utime/stime in /proc/<pid>/stat. 100 on every Linux architecture the tool
/// runs on (the kernel ABI fixes it regardless of CONFIG_HZ).
const TICKS_PER_SEC: u64 = 100;

/// CPU time (user + system, all threads, in microseconds) of a process.
pub fn cpu_us(pid: u32) -> Result<u64, BenchError> {
    let text =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| BenchError::Proc {
            pid,
            reason: e.to_string(),
        })?;
    parse_stat_cpu_ticks(&text)
        .map(|ticks| ticks * 1_000_000 / TICKS_PER_SEC)
        .ok_or_else(|| BenchError::Proc {
            pid,
            reason: "unreadable stat line".into(),
        })
}

/// CPU time of the whole machine (all CPUs, µs) spent running processes — user, nice and system — and
/// stolen by the hypervisor. Interrupt time is left out: the loopback traffic a point makes is
/// handled there, on behalf of the processes under test.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MachineCpu {
    pub busy_us: u64,
    pub steal_us: u64,
}

pub fn machine_cpu() -> Result<MachineCpu, BenchError> {
    let text = std::fs::read_to_string("/proc/stat").map_err(|e| BenchError::Proc {
        pid: 0,
        reason: format!("/proc/stat: {e}"),
    })?;
    parse_proc_stat(&text).ok_or_else(|| BenchError::Proc {
        pid: 0,
        reason: "/proc/stat: no cpu line".into(),
    })
}

/// The aggregate `cpu  user nice system idle iowait irq softirq steal …` line, in ticks → µs.
fn parse_proc_stat(stat: &str) -> Option<MachineCpu> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let us = |t: u64| t * 1_000_000 / TICKS_PER_SEC;
    Some(MachineCpu {
        busy_us: us(ticks.first()? + ticks.get(1)? + ticks.get(2)?),
        steal_us: us(*ticks.get(7).unwrap_or(&0)),
    })
}

/// Resident set size of a process in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, BenchError> {
    let text =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| BenchError::Proc {
            pid,
            reason: e.to_string(),
        })?;
    parse_status_rss_kib(&text).ok_or_else(|| BenchError::Proc {
        pid,
        reason: "no VmRSS line".into(),
    })
}

/// CPU time (µs) of several processes together (the hubs of a run, the nodes of a Redis Cluster).
pub fn cpu_us_sum(pids: &[u32]) -> Result<u64, BenchError> {
    pids.iter().map(|&p| cpu_us(p)).sum()
}

/// Resident set size (KiB) of several processes together.
pub fn rss_kib_sum(pids: &[u32]) -> Result<u64, BenchError> {
    pids.iter().map(|&p| rss_kib(p)).sum()
}

/// utime + stime (fields 14 and 15) from a stat line. The command name (field 2) may contain spaces
/// and parentheses, so fields are counted from the last `)`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace(); // field 3 (state) onwards
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_status_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_is_utime_plus_stime_even_with_odd_names() {
        let line = "4242 (hub (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 31 0 0 20 0 9 0 100 \
                    12345678 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat_cpu_ticks(line), Some(281));
        assert_eq!(parse_stat_cpu_ticks("4242 (x) S 1 2"), None);
    }

    #[test]
    fn machine_cpu_is_user_nice_system_and_steal_apart() {
        let stat = "cpu  100 5 40 9000 3 7 11 2 0 0\ncpu0 50 2 20 4500 1 3 5 1 0 0\nintr 1 2\n";
        assert_eq!(
            parse_proc_stat(stat),
            Some(MachineCpu {
                busy_us: 1_450_000,
                steal_us: 20_000
            })
        );
        assert_eq!(parse_proc_stat("cpu0 1 2 3\n"), None);
        assert!(machine_cpu().expect("this machine's").busy_us > 0);
    }

    #[test]
    fn status_rss_in_kib() {
        let status = "Name:\thub-server\nVmPeak:\t  99999 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_status_rss_kib(status), Some(12345));
        assert_eq!(parse_status_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).expect("own status") > 0);
        cpu_us(me).expect("own stat");
        let rss = rss_kib(me).expect("own status");
        assert!(rss_kib_sum(&[me, me]).expect("twice") >= 2 * rss - 2 * 1024);
        assert_eq!(rss_kib_sum(&[]).expect("none"), 0);
        assert!(
            cpu_us_sum(&[me, u32::MAX]).is_err(),
            "a missing process fails the sum"
        );
        assert!(matches!(cpu_us(u32::MAX), Err(BenchError::Proc { .. })));
    }
}
