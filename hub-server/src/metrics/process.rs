//! The process and its tokio runtime, read at scrape time. prometheus-client has no process
//! collector: on Linux the figures come from `/proc/self` (a few small reads per scrape, none on
//! the message path); elsewhere those families are left out. The runtime's come from tokio's
//! stable `RuntimeMetrics`.

use std::time::{Duration, SystemTime};

/// What `/proc/self` says of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessFigures {
    /// User + system CPU time.
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub threads: u64,
    pub open_fds: u64,
    /// The soft `RLIMIT_NOFILE`; `None` when unlimited.
    pub max_fds: Option<u64>,
}

/// Clock ticks per second of `/proc/<pid>/stat`: the kernel's `USER_HZ`, 100 on every Linux
/// architecture (`sysconf(_SC_CLK_TCK)` would need `unsafe`, which this crate forbids).
const USER_HZ: f64 = 100.0;

#[cfg(target_os = "linux")]
pub fn read() -> Option<ProcessFigures> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    // The directory's own descriptor, open while it is read, is not one of the process's.
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()?
        .count()
        .saturating_sub(1) as u64;
    parse(&stat, &status, &limits, open_fds)
}

#[cfg(not(target_os = "linux"))]
pub fn read() -> Option<ProcessFigures> {
    None
}

/// The figures from the text of `/proc/self/{stat,status,limits}`.
pub fn parse(stat: &str, status: &str, limits: &str, open_fds: u64) -> Option<ProcessFigures> {
    // After the command name, which is in parentheses and may hold spaces: field 3 (state) on.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].split_whitespace().next()?.parse().ok()
    };
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l["Max open files".len()..].split_whitespace().next())
        .and_then(|soft| soft.parse().ok());
    Some(ProcessFigures {
        cpu_seconds: (field(14)? + field(15)?) as f64 / USER_HZ,
        resident_bytes: kib("VmRSS:")? * 1024,
        virtual_bytes: field(23)?,
        threads: field(20)?,
        open_fds,
        max_fds,
    })
}

/// Seconds since the Unix epoch of `at`.
pub fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// What tokio's stable runtime metrics say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuntimeFigures {
    pub workers: usize,
    pub alive_tasks: usize,
    pub global_queue_depth: usize,
    /// Time the workers spent busy, summed over them.
    pub busy: Duration,
}

/// The runtime the scrape runs on; `None` outside one.
pub fn runtime() -> Option<RuntimeFigures> {
    let metrics = tokio::runtime::Handle::try_current().ok()?.metrics();
    let workers = metrics.num_workers();
    Some(RuntimeFigures {
        workers,
        alive_tasks: metrics.num_alive_tasks(),
        global_queue_depth: metrics.global_queue_depth(),
        busy: (0..workers)
            .map(|w| metrics.worker_total_busy_duration(w))
            .sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse_with_a_command_name_holding_spaces_and_parentheses() {
        let stat = "4242 (hub (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 \
                    7 0 123456 104857600 2048 18446744073709551615";
        let status = "Name:\thub\nVmPeak:\t  200000 kB\nVmRSS:\t   8192 kB\nThreads:\t7\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1024                 524288               files\n";
        let figures = parse(stat, status, limits, 12).expect("parses");
        assert_eq!(
            figures,
            ProcessFigures {
                cpu_seconds: 3.25,
                resident_bytes: 8192 * 1024,
                virtual_bytes: 104_857_600,
                threads: 7,
                open_fds: 12,
                max_fds: Some(1024),
            }
        );
        let unlimited = limits.replace("1024 ", "unlimited ");
        assert_eq!(
            parse(stat, status, &unlimited, 12).expect("parses").max_fds,
            None
        );
        assert_eq!(parse("garbage", status, limits, 1), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_memory_threads_and_descriptors() {
        let f = read().expect("/proc/self");
        assert!(f.resident_bytes > 1024 * 1024, "{f:?}");
        assert!(f.threads >= 1 && f.open_fds >= 3, "{f:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_runtime_reports_its_workers_and_tasks() {
        let r = runtime().expect("inside a runtime");
        assert_eq!(r.workers, 2);
        assert!(r.alive_tasks <= 1, "{r:?}");
    }
}
