//! Loading a Lua script on a fresh connection: a restarted Redis (or a promoted replica) has
//! forgotten every script, and EVALSHA must find it.

use std::time::Duration;

use super::conn::Conn;

/// SCRIPT LOAD of `source` (on a cluster redis-rs sends it to every node); false when Redis does
/// not take it in time or hashes it otherwise than `script` expects.
pub async fn load_script(
    mut conn: Conn,
    script: &redis::Script,
    source: &str,
    timeout: Duration,
) -> bool {
    let mut cmd = redis::cmd("SCRIPT");
    cmd.arg("LOAD").arg(source);
    let load = cmd.query_async::<String>(&mut conn);
    match tokio::time::timeout(timeout, load).await {
        Ok(Ok(sha)) if sha == script.get_hash() => true,
        Ok(Ok(sha)) => {
            tracing::error!(%sha, "redis hashed a script differently");
            false
        }
        Ok(Err(err)) => {
            tracing::warn!(%err, "redis SCRIPT LOAD failed");
            false
        }
        Err(_) => false,
    }
}
