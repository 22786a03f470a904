//! The hub's wall clock, as the envelope, the append script and the lag metric read it.

/// Microseconds since the Unix epoch (0 before 1970).
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
