//! Room epochs: a room whose history was lost starts a new one, so an offset never names two
//! messages within one epoch.

/// A fresh epoch: 8 hex digits, random, so a room whose history was lost never reuses one.
pub fn new_epoch() -> String {
    format!("{:08x}", rand::random::<u32>())
}
