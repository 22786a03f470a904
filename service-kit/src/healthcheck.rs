//! The client of the `healthcheck` subcommand: one `GET /health` to the server this process's
//! settings describe, for container engines (the image has no curl). Exit 0 on a 200, 1 otherwise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use humantime::format_duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the subcommand waits for an answer (container engines give it a few seconds).
pub const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("GET /health on {addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("GET /health on {addr}: no answer within {}", format_duration(*.timeout))]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("GET /health on {addr} answered {status_line:?}")]
    Unhealthy {
        addr: SocketAddr,
        status_line: String,
    },
}

/// Asks the server listening on `listen`, prints why when it is not healthy, and says how to exit.
pub async fn run(listen: SocketAddr) -> ExitCode {
    match check(probe_addr(listen), TIMEOUT).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where to reach a server listening on `listen`: a wildcard address (`0.0.0.0`, `::`) is not one
/// to connect to, so loopback of the same family.
pub fn probe_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// One plain HTTP/1.0 `GET /health`: `Ok` when the status code is 200.
pub async fn check(addr: SocketAddr, timeout: Duration) -> Result<(), CheckError> {
    let io = |source| CheckError::Io { addr, source };
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.map_err(io)?;
        let request = format!("GET /health HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut head = Vec::with_capacity(256);
        let mut buf = [0u8; 256];
        // The status line is all we need; stop at its end or after a bounded read.
        while !head.contains(&b'\n') && head.len() < 4096 {
            let n = stream.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        let status_line = line.lines().next().unwrap_or("").trim().to_string();
        if status_line.split_whitespace().nth(1) == Some("200") {
            Ok(())
        } else {
            Err(CheckError::Unhealthy { addr, status_line })
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| CheckError::Timeout { addr, timeout })?
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// A server on a free port that answers every connection with `answer` (after reading the
    /// request), or with nothing at all when `answer` is `None`.
    async fn server(answer: Option<&'static str>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 512];
                    let n = socket.read(&mut request).await.unwrap_or(0);
                    assert!(
                        request[..n].starts_with(b"GET /health HTTP/1.0\r\n"),
                        "{}",
                        String::from_utf8_lossy(&request[..n])
                    );
                    match answer {
                        Some(answer) => {
                            let _ = socket.write_all(answer.as_bytes()).await;
                        }
                        // Hold the connection open without a word.
                        None => std::future::pending::<()>().await,
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_200_is_healthy_and_anything_else_is_not() {
        let ok = server(Some("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")).await;
        check(ok, TIMEOUT).await.expect("200 is healthy");
        assert_eq!(run(ok).await, ExitCode::SUCCESS);

        let unready = server(Some("HTTP/1.1 503 Service Unavailable\r\n\r\n")).await;
        let err = check(unready, TIMEOUT).await.unwrap_err();
        assert!(
            matches!(&err, CheckError::Unhealthy { status_line, .. } if status_line.contains("503")),
            "{err}"
        );
        assert_eq!(run(unready).await, ExitCode::FAILURE);
    }

    #[tokio::test]
    async fn nothing_listening_or_no_answer_is_unhealthy() {
        // A port bound but not listening: connecting is refused, and no other test can take
        // the port while the socket is held.
        let held = tokio::net::TcpSocket::new_v4().expect("socket");
        held.bind("127.0.0.1:0".parse().expect("address"))
            .expect("bind");
        let refused = held.local_addr().expect("addr");
        assert!(matches!(
            check(refused, TIMEOUT).await,
            Err(CheckError::Io { .. })
        ));
        assert_eq!(run(refused).await, ExitCode::FAILURE);

        let silent = server(None).await;
        let err = check(silent, Duration::from_millis(200)).await.unwrap_err();
        assert!(matches!(err, CheckError::Timeout { .. }), "{err}");
        assert!(err.to_string().ends_with("no answer within 200ms"), "{err}");
    }

    #[test]
    fn a_wildcard_listen_address_is_probed_on_loopback() {
        let probe = |listen: &str| probe_addr(listen.parse().expect("address")).to_string();
        assert_eq!(probe("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(probe("[::]:9081"), "[::1]:9081");
        assert_eq!(probe("10.0.0.7:8080"), "10.0.0.7:8080");
    }
}
