//! The stop signal of both servers: SIGTERM (what `docker stop` and Kubernetes send) or SIGINT
//! (Ctrl-C), whichever comes first.

/// Resolves on SIGTERM or SIGINT. If one of them cannot be listened for, the error is logged and
/// the other still works.
pub async fn stop() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received: stopping"),
        () = term => tracing::info!("SIGTERM received: stopping"),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    /// A real SIGTERM to this test process ends `stop()`. Once tokio listens for SIGTERM it never
    /// restores the default action, so a signal sent before `stop()` is listening cannot kill the
    /// test binary: it is sent again until `stop()` answers.
    #[tokio::test]
    async fn sigterm_ends_the_wait() {
        let mut listening =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("listen for SIGTERM");
        let stopped = tokio::spawn(super::stop());
        let pid = std::process::id().to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !stopped.is_finished() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "stop() did not end on SIGTERM"
            );
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("run kill");
            assert!(status.success());
            // Our own listener sees each signal too: wait for it rather than for a time.
            tokio::time::timeout(Duration::from_secs(5), listening.recv())
                .await
                .expect("the signal arrives");
            tokio::task::yield_now().await;
        }
        stopped.await.expect("stop() did not panic");
    }
}
