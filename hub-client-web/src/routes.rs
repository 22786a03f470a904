//! The warp filters: `/` (the page), `/static/*`, `/health`, `/health/live`, and the rejection mapping.

use std::sync::Arc;

use warp::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use warp::http::{HeaderMap, HeaderValue, Response, StatusCode};
use warp::hyper::body::Bytes;
use warp::path::Tail;
use warp::{Filter, Rejection, Reply};

use crate::config::Settings;
use crate::error::WebError;
use crate::health::Health;
use crate::{page, static_files};

/// Every route of the web server, with its error mapping and common security headers.
pub fn routes(
    settings: Arc<Settings>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with_settings = warp::any().map(move || settings.clone());

    let index = warp::get()
        .and(warp::path::end())
        .and(with_settings.clone())
        .and_then(index);
    let health = warp::get()
        .and(warp::path("health"))
        .and(warp::path::end())
        .and(with_settings)
        .map(|s: Arc<Settings>| warp::reply::json(&Health::ok(&s.hub_url)));
    // Liveness and readiness are the same thing here; the path exists so probes can be uniform.
    let live = warp::get()
        .and(warp::path!("health" / "live"))
        .map(|| warp::reply::json(&serde_json::json!({ "status": "ok" })));
    let statics = warp::get()
        .and(warp::path("static"))
        .and(warp::path::tail())
        .and_then(static_file);

    index
        .or(health)
        .or(live)
        .or(statics)
        .recover(handle_rejection)
        .with(warp::reply::with::headers(security_headers()))
        .with(warp::log::custom(log_request))
}

async fn index(settings: Arc<Settings>) -> Result<Response<String>, Rejection> {
    let html = page::render(&settings).map_err(warp::reject::custom)?;
    let csp = page::content_security_policy(&settings.hub_url);
    Response::builder()
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        // The page names the current asset version, so it must be revalidated every time.
        .header(CACHE_CONTROL, "no-cache")
        .header(CONTENT_SECURITY_POLICY, csp)
        .body(html)
        .map_err(|_| warp::reject::custom(WebError::NotFound))
}

async fn static_file(tail: Tail) -> Result<Response<Bytes>, Rejection> {
    let asset = static_files::get(tail.as_str()).ok_or(WebError::NotFound)?;
    Response::builder()
        .header(CONTENT_TYPE, asset.content_type)
        .header(CACHE_CONTROL, static_files::CACHE_CONTROL)
        .body(Bytes::from_static(asset.bytes))
        .map_err(|_| warp::reject::custom(WebError::NotFound))
}

/// The one place errors become responses: our own errors by [`WebError::status`], an unknown path 404;
/// anything else (405, bad headers) keeps warp's own answer.
async fn handle_rejection(err: Rejection) -> Result<Response<String>, Rejection> {
    let status = if let Some(e) = err.find::<WebError>() {
        if e.status().is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        e.status()
    } else if err.is_not_found() {
        StatusCode::NOT_FOUND
    } else {
        return Err(err);
    };
    let body = status.canonical_reason().unwrap_or("error").to_string();
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(res)
}

fn security_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h
}

fn log_request(info: warp::log::Info<'_>) {
    let (method, path, status) = (info.method(), info.path(), info.status().as_u16());
    let elapsed_ms = info.elapsed().as_secs_f64() * 1000.0;
    // Health probes arrive every few seconds; keep them out of the default log level.
    if path.starts_with("/health") {
        tracing::debug!(%method, path, status, elapsed_ms, "request");
    } else {
        tracing::info!(%method, path, status, elapsed_ms, "request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn settings() -> Arc<Settings> {
        let env = [("HUB_URL".to_string(), "ws://hub.test:8080/ws".to_string())];
        Arc::new(Settings::load_from(None, env).expect("valid settings"))
    }

    #[tokio::test]
    async fn index_renders_the_hub_url_with_a_csp() {
        let res = warp::test::request()
            .path("/")
            .reply(&routes(settings()))
            .await;
        assert_eq!(res.status(), 200);
        let body = String::from_utf8_lossy(res.body());
        assert!(
            body.contains(r#"data-hub-url="ws://hub.test:8080/ws""#),
            "{body}"
        );
        assert!(body.contains("/static/chat.js?v="), "{body}");
        let csp = res.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap_or("");
        assert!(
            csp.contains("connect-src 'self' ws://hub.test:8080/ws"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }

    #[tokio::test]
    async fn template_values_are_html_escaped() {
        let env = [("WEB_TITLE".to_string(), "<b>chat</b> & co".to_string())];
        let settings = Arc::new(Settings::load_from(None, env).expect("valid settings"));
        let res = warp::test::request()
            .path("/")
            .reply(&routes(settings))
            .await;
        let body = String::from_utf8_lossy(res.body());
        assert!(!body.contains("<b>chat</b>"), "{body}");
        assert!(
            body.contains("&#60;b&#62;chat") || body.contains("&lt;b&gt;chat"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn static_files_are_served_with_type_and_cache_header() {
        let res = warp::test::request()
            .path("/static/chat.js?v=1")
            .reply(&routes(settings()))
            .await;
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap_or("")
                .starts_with("text/javascript")
        );
        assert!(
            res.headers()[CACHE_CONTROL]
                .to_str()
                .unwrap_or("")
                .contains("immutable")
        );
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    }

    #[tokio::test]
    async fn missing_files_and_paths_are_404() {
        for path in [
            "/static/nope.js",
            "/static/../Cargo.toml",
            "/nope",
            "/static/",
        ] {
            let res = warp::test::request()
                .path(path)
                .reply(&routes(settings()))
                .await;
            assert_eq!(res.status(), 404, "{path}");
        }
    }

    #[tokio::test]
    async fn health_answers_200_with_json() {
        let res = warp::test::request()
            .path("/health")
            .reply(&routes(settings()))
            .await;
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = serde_json::from_slice(res.body()).expect("json");
        assert_eq!(body["status"], "ok");
        let live = warp::test::request()
            .path("/health/live")
            .reply(&routes(settings()))
            .await;
        assert_eq!(live.status(), 200);
    }

    #[tokio::test]
    async fn a_render_error_is_a_500() {
        let failing = warp::path("boom")
            .and_then(|| async {
                Err::<String, _>(warp::reject::custom(WebError::Render(askama::Error::Fmt)))
            })
            .recover(handle_rejection);
        let res = warp::test::request().path("/boom").reply(&failing).await;
        assert_eq!(res.status(), 500);
    }
}
