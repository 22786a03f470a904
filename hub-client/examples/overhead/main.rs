//! The Rust SDK's cost per message over a bare WebSocket: one receiver takes N messages of a room
//! flooded by other connections, as a bare tokio-tungstenite socket (frames counted, nothing
//! parsed), a bare socket that parses each frame into a `serde_json::Value` (the least an
//! application does), and the SDK (parsed into a `Message`, ordered by offset, checked against
//! copies, handed through the subscription's buffer to a `Stream`). The receiver runs alone on
//! one thread and its CPU time is read from /proc/thread-self/schedstat, so the hub and the
//! publishers (other processes and threads) do not count.
//!
//! `cargo run -p hub-client --release --example overhead -- [--messages N] [--rate R]
//! [--rounds K] [--size BYTES] [--hub PATH]` (the hub: target/release/hub-server by default,
//! run standalone on a free port).

mod cpu;
mod flood;
mod hub;
mod receive;

use std::time::Duration;

use receive::Mode;

struct Args {
    messages: u64,
    warmup: u64,
    rate: u64,
    rounds: usize,
    size: usize,
    hub: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        messages: 200_000,
        warmup: 10_000,
        rate: 40_000,
        rounds: 3,
        size: 100,
        hub: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--messages" => a.messages = number(value()?)?,
            "--warmup" => a.warmup = number(value()?)?,
            "--rate" => a.rate = number(value()?)?,
            "--rounds" => a.rounds = number(value()?)? as usize,
            "--size" => a.size = number(value()?)? as usize,
            "--hub" => a.hub = Some(value()?),
            "--help" | "-h" => {
                println!(
                    "overhead [--messages N (200000)] [--warmup N (10000)] [--rate msgs/s (40000)] \
                     [--rounds K (3)] [--size content bytes (100)] [--hub PATH]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("overhead: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("overhead: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let hub = hub::Hub::start(args.hub.as_deref())?;
    println!(
        "hub {} (pid {}), {} messages of {} content bytes per run after {} warm-up, flooded at {} msgs/s, {} rounds",
        hub.bin,
        hub.pid(),
        args.messages,
        args.size,
        args.warmup,
        args.rate,
        args.rounds
    );
    let modes = [Mode::Bare, Mode::BareJson, Mode::Sdk];
    let mut results: Vec<(Mode, Vec<receive::Measured>)> =
        modes.iter().map(|m| (*m, Vec::new())).collect();
    for round in 0..args.rounds {
        for (i, mode) in modes.iter().enumerate() {
            let room = format!("bench-{round}-{i}");
            let m = measure(&hub, *mode, &room, args)?;
            println!(
                "round {} {:<9} {:>8} msgs  {:>6.2} s  {:>8.0} msgs/s  {:>6.2} µs CPU/msg",
                round + 1,
                mode.name(),
                m.messages,
                m.wall.as_secs_f64(),
                m.messages as f64 / m.wall.as_secs_f64(),
                m.cpu_per_message_us()
            );
            results[i].1.push(m);
        }
    }
    println!(
        "\nmedian of {} rounds (receiver thread CPU per message):",
        args.rounds
    );
    let bare = median_cpu(&results[0].1);
    for (mode, runs) in &results {
        let cpu = median_cpu(runs);
        println!(
            "  {:<9} {:>6.2} µs/msg   {:>+6.2} µs over bare   ({:.1}x)",
            mode.name(),
            cpu,
            cpu - bare,
            cpu / bare
        );
    }
    Ok(())
}

fn median_cpu(runs: &[receive::Measured]) -> f64 {
    let mut v: Vec<f64> = runs
        .iter()
        .map(receive::Measured::cpu_per_message_us)
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One receiver of `mode` in `room`, flooded until it has taken warm-up + N messages.
fn measure(
    hub: &hub::Hub,
    mode: Mode,
    room: &str,
    args: &Args,
) -> Result<receive::Measured, String> {
    let url = hub.ws_url();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let receiver = {
        let (url, room) = (url.clone(), room.to_owned());
        let (warmup, messages) = (args.warmup, args.messages);
        std::thread::spawn(move || receive::run(mode, &url, &room, warmup, messages, ready_tx))
    };
    // The receiver has joined before the flood starts.
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| format!("{} receiver did not join", mode.name()))?;
    let flood = flood::Flood::start(&url, room, args.rate, args.size)?;
    let measured = receiver
        .join()
        .map_err(|_| "the receiver panicked".to_owned())??;
    let sent = flood.stop();
    if sent < args.warmup + args.messages {
        return Err(format!("only {sent} published"));
    }
    Ok(measured)
}
