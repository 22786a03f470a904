//! Reading a presence hash in pages (HSCAN) instead of whole (HGETALL): a room of 250,000 users
//! is a hash of 250,000 fields, and one HGETALL of it held Redis's only thread for 1–2 s in the
//! 250k-connection bench. Each page holds Redis for well under a millisecond.

use std::collections::HashMap;

use crate::redis_link::Conn;

/// Fields a call visits.
const PAGE: usize = 1000;

/// The fields of hash `key` matching `pattern` (all: `None`), page by page, until the scan ends
/// or at least `enough` were read. A map: a scan may return a field twice.
pub(super) async fn fields(
    conn: &mut Conn,
    key: &str,
    pattern: Option<&str>,
    enough: usize,
) -> redis::RedisResult<HashMap<String, String>> {
    let mut fields = HashMap::new();
    let mut cursor: u64 = 0;
    loop {
        let mut hscan = redis::cmd("HSCAN");
        hscan.arg(key).arg(cursor);
        if let Some(pattern) = pattern {
            hscan.arg("MATCH").arg(pattern);
        }
        let (next, page): (u64, Vec<String>) =
            hscan.arg("COUNT").arg(PAGE).query_async(conn).await?;
        let mut flat = page.into_iter();
        while let (Some(field), Some(value)) = (flat.next(), flat.next()) {
            fields.insert(field, value);
        }
        cursor = next;
        if cursor == 0 || fields.len() >= enough {
            return Ok(fields);
        }
    }
}

/// A pattern matching the fields that start with `prefix`, taken literally.
pub(super) fn starting_with(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('*');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_matched_literally() {
        assert_eq!(starting_with("h-1|"), "h-1|*");
        assert_eq!(starting_with(r"a*b?[c]\\"), r"a\*b\?\[c\]\\\\*");
    }
}
