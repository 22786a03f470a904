//! CPU time of the calling thread, from /proc/thread-self/schedstat (nanoseconds on a CPU).

pub fn thread_ns() -> Result<u64, String> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .map_err(|e| format!("/proc/thread-self/schedstat: {e}"))?;
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("unreadable schedstat: {text:?}"))
}
