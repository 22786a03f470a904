//! Child processes of the conformance run: started with exactly the environment given (nothing
//! inherited but PATH), their output appended to a log file and scanned line by line, killed when
//! dropped (so none outlives a failed scenario).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub struct Proc {
    pub child: Child,
}

impl Proc {
    /// Starts `program` with `args` and `env`; each line it prints goes to `log_path` and to
    /// `lines` (when given; dropped lines are not waited for).
    pub fn start(
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        log_path: PathBuf,
        lines: Option<mpsc::UnboundedSender<String>>,
    ) -> Result<Proc, String> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let path = log_path;
        tokio::spawn(async move {
            let Ok(mut log) = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .await
            else {
                return;
            };
            let mut out = BufReader::new(out).lines();
            let mut err = BufReader::new(err).lines();
            let (mut out_open, mut err_open) = (true, true);
            while out_open || err_open {
                let line = tokio::select! {
                    l = out.next_line(), if out_open => l.ok().flatten().or_else(|| { out_open = false; None }),
                    l = err.next_line(), if err_open => l.ok().flatten().or_else(|| { err_open = false; None }),
                };
                if let Some(line) = line {
                    let _ = log.write_all(line.as_bytes()).await;
                    let _ = log.write_all(b"\n").await;
                    if let Some(tx) = &lines {
                        let _ = tx.send(line);
                    }
                }
            }
        });
        Ok(Proc { child })
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and wait until it is gone.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}
