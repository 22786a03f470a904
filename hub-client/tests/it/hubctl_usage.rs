//! hubctl's command line refuses what it does not know (exit 2, saying what), before anything is
//! sent anywhere.

use crate::hubctl;

#[tokio::test]
async fn unknown_flags_and_commands_are_errors() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["sub", "--url", "ws://127.0.0.1:9/ws", "--bogus", "r"],
            "--bogus",
        ),
        (&["pub", "--url", "ws://127.0.0.1:9/ws", "r"], "<TEXT>"),
        (
            &[
                "api",
                "--url",
                "http://127.0.0.1:9",
                "--key",
                "k",
                "frobnicate",
            ],
            "frobnicate",
        ),
        (
            &[
                "api",
                "--url",
                "http://127.0.0.1:9",
                "--key",
                "k",
                "history",
                "r",
                "--since-epoch",
                "e",
            ],
            "--since-offset",
        ),
        (
            &[
                "sub",
                "--url",
                "ws://127.0.0.1:9/ws",
                "--history",
                "many",
                "r",
            ],
            "many",
        ),
    ];
    for (args, named) in cases {
        let out = hubctl::run(args, &[]).await;
        assert_eq!(out.status.code(), Some(2), "hubctl {args:?}");
        let err = hubctl::stderr(&out);
        assert!(err.contains(named), "hubctl {args:?} names {named}: {err}");
        assert!(hubctl::stdout(&out).is_empty());
    }
}

#[tokio::test]
async fn a_bad_url_is_an_error_not_a_retry_loop() {
    let out = hubctl::run(&["sub", "--url", "http://127.0.0.1:9/ws", "r"], &[]).await;
    hubctl::assert_failed(&out, "ws:// or wss://");
}
