//! The built `hub-client-web` binary's command line: help, usage errors, and the healthcheck's exit
//! codes against a real server and against a port where nothing listens.

use std::process::{Command, Output};

use hub_client_web::Settings;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;

/// Runs the binary with only the given environment (none of the test runner's `WEB_*`).
async fn web(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hub-client-web"));
    command.args(args).env_clear().envs(env.iter().copied());
    tokio::task::spawn_blocking(move || command.output().expect("run hub-client-web"))
        .await
        .expect("joined")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn help_is_printed_and_exits_0() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let out = web(args, &[]).await;
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stdout}");
        assert!(
            stdout.contains("Usage: hub-client-web [OPTIONS] [COMMAND]"),
            "{stdout}"
        );
        assert!(stdout.contains("healthcheck"), "{stdout}");
        assert!(stdout.contains("--config <FILE>"), "{stdout}");
        assert!(stdout.contains("WEB_API_KEY"), "{stdout}");
    }
}

#[tokio::test]
async fn an_unknown_argument_is_a_usage_error_with_exit_code_2() {
    for args in [
        &["--confg", "web.toml"][..],
        &["serve-please"],
        &["--config"],
    ] {
        let out = web(args, &[]).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[tokio::test]
async fn a_bad_setting_names_its_key_and_exits_1() {
    let out = web(&[], &[("WEB_TOKEN_TTL", "25h")]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("token_ttl must be between 1s and 24h, got 1day 1h"),
        "{stderr}"
    );
}

#[tokio::test]
async fn healthcheck_exits_0_while_a_server_answers_and_1_when_nothing_listens() {
    let settings = Settings::load_from(None, [("HUB_URL", "ws://127.0.0.1:1/ws")]).expect("valid");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(hub_client_web::run(listener, settings, async {
        let _ = stopped.await;
    }));
    let out = web(&["healthcheck"], &[("WEB_LISTEN", &addr)]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The address from a settings file instead: `--config` after the subcommand is read too.
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-healthcheck-{}.toml", std::process::id()));
    std::fs::write(&file, format!("listen = \"{addr}\"\n")).expect("write the file");
    let path = file.to_str().expect("a UTF-8 path");
    let out = web(&["healthcheck", "--config", path], &[]).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    stop.send(()).expect("server still running");
    server.await.expect("server stopped");

    // Bound but not listening: refused, and no other test can take the port meanwhile.
    let held = TcpSocket::new_v4().expect("socket");
    held.bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind");
    let refused = held.local_addr().expect("addr").to_string();
    let out = web(&["healthcheck"], &[("WEB_LISTEN", &refused)]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("unhealthy: GET /health on"), "{stderr}");
}
