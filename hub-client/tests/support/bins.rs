//! The hub-server binary the tests run: `HUB_SERVER_BIN`, or `target/<profile>/hub-server`, built
//! by cargo first (a test of hub-client is not hub-server's, so cargo does not build it for us).
//! Checked once per test process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn hub_server() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND.get_or_init(find_or_build).clone()
}

fn find_or_build() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("HUB_SERVER_BIN") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("HUB_SERVER_BIN={} is not a file", bin.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/<profile>/deps/<test>-… → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot find the target directory")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["build", "-q", "-p", "hub-server", "--bin", "hub-server"];
    if profile_dir.ends_with("release") {
        args.push("--release");
    }
    let status = Command::new(&cargo)
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    let bin = profile_dir.join("hub-server");
    if !status.success() || !bin.is_file() {
        return Err(format!(
            "no hub-server at {}: `cargo build -p hub-server` failed ({status}); build it, or set HUB_SERVER_BIN",
            bin.display()
        ));
    }
    Ok(bin)
}

/// redis-server must be installed.
pub fn check_redis() -> Result<(), String> {
    match Command::new("redis-server").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => Err("redis-server is needed: apt-get install redis-server".into()),
    }
}
