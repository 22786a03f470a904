//! Running the built hubctl: once to completion (its status and output), or in the background
//! (its stdout lines as they come).

use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub const BIN: &str = env!("CARGO_BIN_EXE_hubctl");

/// Runs `hubctl args…` with `env` added, to completion (at most 30 s).
pub async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("HUB_TOKEN")
        .env_remove("HUB_API_KEY")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("hubctl finished within 30 s")
        .expect("hubctl runs")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// hubctl failed (exit 1) saying `why` on stderr; its stderr.
pub fn assert_failed(out: &Output, why: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "exit 1: {err}");
    assert!(err.contains(why), "stderr names {why:?}: {err}");
    err
}

/// hubctl running in the background: its stdout and stderr lines as they come.
pub struct Running {
    pub child: Child,
    pub out: mpsc::UnboundedReceiver<String>,
    pub err: mpsc::UnboundedReceiver<String>,
}

pub fn spawn(args: &[&str]) -> Running {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("HUB_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("hubctl starts");
    let out = lines(child.stdout.take().expect("stdout"));
    let err = lines(child.stderr.take().expect("stderr"));
    Running { child, out, err }
}

fn lines(
    from: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(from).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

impl Running {
    /// The next stdout line (at most `within`).
    pub async fn line(&mut self, within: Duration) -> Option<String> {
        tokio::time::timeout(within, self.out.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits for a stderr line containing `text` (at most `within`); the lines seen.
    pub async fn stderr_until(&mut self, text: &str, within: Duration) -> Result<(), Vec<String>> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.err.recv()).await {
                Ok(Some(line)) if line.contains(text) => return Ok(()),
                Ok(Some(line)) => seen.push(line),
                _ => return Err(seen),
            }
        }
    }

    /// SIGTERM, and its exit status (at most 10 s).
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill(1)");
        assert!(sent.success(), "kill -TERM {pid}");
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("hubctl exits within 10 s of SIGTERM")
            .expect("wait")
    }
}
