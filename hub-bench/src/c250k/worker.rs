//! `hub-bench c250k-worker`: one process holding up to an open-file limit's worth of the run's
//! connections (users `first..first + users`), on one thread. It answers the coordinator's commands
//! on stdin (see [`control`](super::control)) and exits when told to or when stdin closes, so it
//! never outlives the coordinator.
//!
//! What the connection tasks of its thread share is in [`worker_state`](super::worker_state); each
//! connection is a task of [`conn`](super::conn).

use std::rc::Rc;

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::conn;
use super::control::Command;
use super::worker_state::{Worker, WorkerConfig};
use crate::procstat;

/// The worker process: a current-thread runtime, every connection a local task.
pub fn main(cfg: WorkerConfig) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("runtime")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, run(cfg))
}

async fn run(cfg: WorkerConfig) -> Result<()> {
    let rss_start = procstat::rss_kib(std::process::id())?;
    let w = Rc::new(Worker::new(cfg, rss_start)?);
    for i in 0..w.cfg.users {
        tokio::task::spawn_local(conn::run(w.clone(), i as usize));
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    while let Some(line) = lines.next_line().await? {
        let answer = match serde_json::from_str::<Command>(&line)
            .with_context(|| format!("command {line:?}"))?
        {
            Command::Status => serde_json::to_string(&*w.stats.borrow())?,
            Command::Report(sent) => serde_json::to_string(&w.report(&sent))?,
            Command::Quit => break,
        };
        stdout.write_all(answer.as_bytes()).await?;
        stdout.write_all(b"\n").await?;
        stdout.flush().await?;
    }
    Ok(())
}
