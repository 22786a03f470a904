//! Redis's own account of a load point: `INFO commandstats` read before and after the window, so
//! the calls and the microseconds Redis spent in each command (a script and, counted apart, every
//! command the script ran) come from Redis itself. A few lines of RESP over one TCP connection, so
//! the tool needs no Redis client.

use std::collections::BTreeMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::BenchError;

/// Calls and total µs of one command since Redis started (or since `CONFIG RESETSTAT`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub calls: u64,
    pub usec: u64,
}

/// One command's share of a load point.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CommandStat {
    pub command: String,
    pub calls: u64,
    pub usec: u64,
    pub usec_per_call: f64,
}

pub type Snapshot = BTreeMap<String, Totals>;

/// `INFO commandstats` from the Redis at `addr` (`host:port`).
pub async fn snapshot(addr: &str) -> Result<Snapshot, BenchError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")
        .await?;
    let mut buf = Vec::with_capacity(4096);
    loop {
        if let Some(body) = bulk_string(&buf)? {
            return Ok(parse(body));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(redis_error("connection closed before the INFO reply"));
        }
    }
}

/// What was called between two snapshots, the most expensive first (INFO itself left out).
pub fn diff(before: &Snapshot, after: &Snapshot) -> Vec<CommandStat> {
    let mut out: Vec<CommandStat> = after
        .iter()
        // The snapshots' own INFO calls are the tool's, not the hubs'.
        .filter(|(command, _)| command.as_str() != "info")
        .filter_map(|(command, a)| {
            let b = before.get(command).copied().unwrap_or_default();
            let calls = a.calls.saturating_sub(b.calls);
            let usec = a.usec.saturating_sub(b.usec);
            (calls > 0).then(|| CommandStat {
                command: command.clone(),
                calls,
                usec,
                usec_per_call: usec as f64 / calls as f64,
            })
        })
        .collect();
    out.sort_by(|a, b| b.usec.cmp(&a.usec).then_with(|| a.command.cmp(&b.command)));
    out
}

/// The payload of a complete RESP bulk string (`$<len>\r\n<bytes>\r\n`), `None` while incomplete.
fn bulk_string(buf: &[u8]) -> Result<Option<&str>, BenchError> {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let header = std::str::from_utf8(&buf[..eol]).map_err(|_| redis_error("non-UTF-8 reply"))?;
    let len: usize = match header.strip_prefix('$').map(str::parse) {
        Some(Ok(len)) => len,
        _ => return Err(redis_error(&format!("unexpected reply {header:?}"))),
    };
    let start = eol + 2;
    if buf.len() < start + len + 2 {
        return Ok(None);
    }
    std::str::from_utf8(&buf[start..start + len])
        .map(Some)
        .map_err(|_| redis_error("non-UTF-8 INFO"))
}

/// Lines like `cmdstat_evalsha:calls=12,usec=345,usec_per_call=28.75,rejected_calls=0,…`.
fn parse(info: &str) -> Snapshot {
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| -> Option<u64> {
                fields
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))?
                    .parse()
                    .ok()
            };
            Some((
                name.to_owned(),
                Totals {
                    calls: field("calls")?,
                    usec: field("usec")?,
                },
            ))
        })
        .collect()
}

fn redis_error(reason: &str) -> BenchError {
    BenchError::Io(std::io::Error::other(format!("redis INFO: {reason}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Commandstats\r\n\
        cmdstat_publish:calls=10,usec=30,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_evalsha:calls=4,usec=100,usec_per_call=25.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_client|setname:calls=2,usec=1,usec_per_call=0.50,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_info:calls=7,usec=70,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n";

    #[test]
    fn commandstats_lines() {
        let s = parse(INFO);
        assert_eq!(
            s.get("evalsha"),
            Some(&Totals {
                calls: 4,
                usec: 100
            })
        );
        assert_eq!(s.get("client|setname").map(|t| t.calls), Some(2));
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn the_difference_most_expensive_first() {
        let before = parse(INFO);
        let after = parse(
            &INFO
                .replace("calls=10,usec=30,", "calls=110,usec=330,")
                .replace("calls=4,usec=100,", "calls=104,usec=2600,")
                .replace("calls=7,usec=70,", "calls=9,usec=90,"),
        );
        let d = diff(&before, &after);
        assert_eq!(d.len(), 2, "INFO is the tool's own: {d:?}");
        assert_eq!(
            (d[0].command.as_str(), d[0].calls, d[0].usec_per_call),
            ("evalsha", 100, 25.0)
        );
        assert_eq!(
            (d[1].command.as_str(), d[1].usec_per_call),
            ("publish", 3.0)
        );
    }

    #[test]
    fn bulk_strings_whole_or_not_yet() {
        assert_eq!(bulk_string(b"$5\r\nhel").expect("valid"), None);
        assert_eq!(
            bulk_string(b"$5\r\nhello\r\n").expect("valid"),
            Some("hello")
        );
        assert!(bulk_string(b"-ERR unknown\r\n").is_err());
        assert_eq!(bulk_string(b"$5").expect("valid"), None);
    }

    #[tokio::test]
    async fn reads_the_reply_of_a_server_that_sends_it_in_pieces() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 64];
            let n = socket.read(&mut request).await.expect("request");
            let reply = format!("${}\r\n{INFO}\r\n", INFO.len());
            let (a, b) = reply.as_bytes().split_at(reply.len() / 2);
            socket.write_all(a).await.expect("first half");
            socket.flush().await.expect("flush");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            socket.write_all(b).await.expect("second half");
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        let s = snapshot(&addr).await.expect("snapshot");
        assert_eq!(s.get("publish").map(|t| t.usec), Some(30));
        let request = server.await.expect("server");
        assert!(
            request.contains("INFO") && request.contains("commandstats"),
            "{request:?}"
        );
    }
}
