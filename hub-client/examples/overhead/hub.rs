//! The hub under the bench: a standalone hub-server (in-memory history, so messages carry offsets
//! as with Redis) on a free port, with limits raised so that neither the flood nor the receiver
//! is throttled or kicked.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Hub {
    pub bin: String,
    child: Child,
    port: u16,
}

impl Hub {
    pub fn start(bin: Option<&str>) -> Result<Hub, String> {
        let bin = match bin {
            Some(b) => b.to_owned(),
            None => default_bin()?,
        };
        let mut child = Command::new(&bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HUB_LISTEN", "127.0.0.1:0")
            .env("HUB_NAME", "bench")
            .env("HUB_RATE_LIMIT_PER_SEC", "10000000")
            .env("HUB_RATE_LIMIT_BURST", "10000000")
            .env("HUB_SEND_QUEUE", "100000")
            .env("HUB_SEND_QUEUE_BYTES", "268435456")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            // tracing writes to stdout or stderr depending on the setup: read both.
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {bin}: {e}"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().ok_or("no stdout")?);
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().ok_or("no stderr")?);
        for stream in [out, err] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                // Read to the end (the hub must never block on a full pipe); the port once.
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if line.contains("hub listening")
                        && let Some(port) = line
                            .split_once(" addr=")
                            .and_then(|(_, rest)| rest.split_whitespace().next())
                            .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
                    {
                        let _ = tx.send(port.port());
                    }
                }
            });
        }
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| format!("{bin} did not say where it listens"))?;
        let hub = Hub { bin, child, port };
        hub.wait_healthy()?;
        Ok(hub)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_healthy(&self) -> Result<(), String> {
        use std::io::{Read, Write};
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /health HTTP/1.0\r\n\r\n");
                let mut head = [0u8; 32];
                let n = s.read(&mut head).unwrap_or(0);
                let status = String::from_utf8_lossy(&head[..n])
                    .split_whitespace()
                    .nth(1)
                    .map(str::to_owned);
                if status.as_deref() == Some("200") {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("the hub did not become healthy".into())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// target/release/hub-server next to this example (target/release/examples/overhead).
fn default_bin() -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("hub-server"))
        .ok_or("no target directory")?;
    if bin.is_file() {
        Ok(bin.display().to_string())
    } else {
        Err(format!(
            "no hub at {}: cargo build --release -p hub-server, or --hub PATH",
            bin.display()
        ))
    }
}
