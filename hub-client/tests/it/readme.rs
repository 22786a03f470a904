//! The README's example is `examples/quickstart.rs`, word for word, and it runs: against a real
//! hub it prints the room's history, the ack of its own message, and what others say after.

use std::time::Duration;

use crate::env::Env;

/// The README's ```rust block.
fn readme_example() -> String {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("```rust,no_run\n")
        .expect("the README has a ```rust,no_run block")
        + "```rust,no_run\n".len();
    let len = readme[start..].find("```\n").expect("the block ends");
    readme[start..start + len].to_owned()
}

#[test]
fn the_readme_example_is_the_quickstart_example() {
    assert_eq!(
        readme_example(),
        include_str!("../../examples/quickstart.rs"),
        "README.md's example and examples/quickstart.rs differ: keep them the same"
    );
}

#[tokio::test]
async fn the_quickstart_example_runs_as_written() {
    let env = Env::start("readme", 1, &[]).await;
    let earlier = env
        .api(0)
        .publish("lobby", "said earlier", "readme-earlier")
        .await
        .expect("published");

    let example = build_example();
    let mut run = tokio::process::Command::new(&example)
        .env("HUB_URL", env.ws_url(0))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the example starts");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        run.stdout.take().expect("stdout"),
    ));
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("a line within 20 s")
            .expect("readable")
            .expect("a line")
    };
    let offset = earlier.offset.expect("stored with an offset") + 1;
    assert_eq!(next().await, format!("stored at offset Some({offset})"));
    assert_eq!(
        next().await,
        "api: said earlier",
        "the history it asked for"
    );
    env.api(0)
        .publish("lobby", "said after", "readme-after")
        .await
        .expect("published");
    assert_eq!(next().await, "api: said after", "a live message");
}

/// `target/<profile>/examples/quickstart`, built by cargo now (a test target does not get
/// examples built for it).
fn build_example() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let mut args = vec!["build", "-q", "-p", "hub-client", "--example", "quickstart"];
    if profile_dir.ends_with("release") {
        args.push("--release");
    }
    let status = std::process::Command::new(cargo)
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "cargo build --example quickstart: {status}"
    );
    profile_dir.join("examples/quickstart")
}
