//! `/health` for load balancers, and the `healthcheck` subcommand that asks it (images carry no curl).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The body of `/health`. The web server has no dependency to be unready on: serving means healthy.
/// It does not probe the hub: a hub outage is the page's to show, not a reason to pull the page.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub service: &'static str,
    pub version: &'static str,
    /// The configured hub URL, or `ws://<page host>:PORT/PATH` when the page derives it.
    pub hub_url: String,
}

impl Health {
    pub fn ok(hub_url: String) -> Self {
        Health {
            status: "ok",
            service: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            hub_url,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("GET /health on {addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("GET /health on {addr}: no answer within {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("GET /health on {addr} answered {status_line:?}")]
    Unhealthy {
        addr: SocketAddr,
        status_line: String,
    },
}

/// Where to reach a server listening on `listen`: a wildcard address is reached over loopback.
pub fn probe_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// One plain HTTP/1.0 GET: enough for a status line, and no HTTP client in the image.
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
        let code = status_line.split_whitespace().nth(1);
        if code == Some("200") {
            Ok(())
        } else {
            Err(CheckError::Unhealthy { addr, status_line })
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| CheckError::Timeout { addr, timeout })?
}
