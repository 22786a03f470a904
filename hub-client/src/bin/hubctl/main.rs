//! hubctl: the realtime-hub command line. `sub` prints a room's messages (exactly once, in order,
//! across reconnects), `pub` publishes one and prints its ack, `api` calls the server API.
//! stdout carries only results (one JSON line each); notes and errors go to stderr.
//! Exit status: 0 done, 1 failed, 2 bad usage.

mod api;
mod batch;
mod cli;
mod publish;
mod sub;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hubctl: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            cli::Command::Sub(args) => sub::run(args).await,
            cli::Command::Pub(args) => publish::run(args).await,
            cli::Command::Api(args) => api::run(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("hubctl: {why}");
            ExitCode::FAILURE
        }
    }
}

/// The client options of a command line: a fixed token, if given.
fn options(token: Option<String>) -> hub_client::ClientOptions {
    let options = hub_client::ClientOptions::default();
    match token {
        Some(token) => options.with_token(token),
        None => options,
    }
}
