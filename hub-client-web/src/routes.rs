//! The warp filters: `/` (the page), `/status` and `/status/data` (the cluster's status page),
//! `/status/webhooks` (the latest webhook events), `/static/*`, `/sdk/*` (the JS SDK's modules), `/health`,
//! `/health/live`, `POST /token` (the demo identity provider), `POST /hooks/*` (the demo backend), and the
//! rejection mapping.

use std::collections::HashMap;
use std::sync::Arc;

use warp::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, ORIGIN, VARY,
};
use warp::http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use warp::hyper::body::Bytes;
use warp::path::Tail;
use warp::reply::Response as AnyResponse;
use warp::{Filter, Rejection, Reply};

use crate::config::Settings;
use crate::error::WebError;
use crate::health::Health;
use crate::hooks::{self, Hooks};
use crate::status::StatusBoard;
use crate::token::{self, Issuer, TokenError};
use crate::{page, static_files};

/// Every route of the web server, with its error mapping and common security headers.
pub fn routes(
    settings: Arc<Settings>,
    status: StatusBoard,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let issuer = Issuer::from_settings(&settings).map(Arc::new);
    let hooks = Arc::new(Hooks::new(settings.hook_secret.clone()));
    let backend = hooks::routes(hooks.clone());
    let status_webhooks = warp::get()
        .and(warp::path!("status" / "webhooks"))
        .and(warp::any().map(move || hooks.clone()))
        .map(status_webhooks);
    let with_settings = warp::any().map(move || settings.clone());

    let index = warp::get()
        .and(warp::path::end())
        .and(with_settings.clone())
        .and(warp::header::optional::<String>(HOST.as_str()))
        .and_then(index);
    let status_page = warp::get()
        .and(warp::path("status"))
        .and(warp::path::end())
        .and(with_settings.clone())
        .and_then(status_page);
    let status_data = warp::get()
        .and(warp::path!("status" / "data"))
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::any().map(move || status.clone()))
        .map(status_data);
    let health = warp::get()
        .and(warp::path("health"))
        .and(warp::path::end())
        .and(with_settings)
        .map(|s: Arc<Settings>| warp::reply::json(&Health::ok(s.hub_target().describe())));
    // Liveness and readiness are the same thing here; the path exists so probes can be uniform.
    let live = warp::get()
        .and(warp::path!("health" / "live"))
        .map(|| warp::reply::json(&serde_json::json!({ "status": "ok" })));
    let statics = warp::get()
        .and(warp::path("static"))
        .and(warp::path::tail())
        .and_then(static_file);
    let sdk = warp::get()
        .and(warp::path("sdk"))
        .and(warp::path::tail())
        .and_then(sdk_file);
    let token = warp::path("token")
        .and(warp::path::end())
        .and(token_route(issuer));

    index
        .or(status_page)
        .or(status_data)
        .or(status_webhooks)
        .or(health)
        .or(live)
        .or(statics)
        .or(sdk)
        .or(token)
        .or(backend)
        .recover(handle_rejection)
        .with(warp::reply::with::headers(security_headers()))
        .with(warp::log::custom(log_request))
}

/// `POST /token` once the path matched: every refusal, warp's own (405, 411, 413) included, becomes
/// the JSON error body API clients expect. The checks run in the order a reader would: does the
/// endpoint exist, is it a POST from our own page, is it JSON, is it small, is it valid.
fn token_route(
    issuer: Option<Arc<Issuer>>,
) -> impl Filter<Extract = (AnyResponse,), Error = Rejection> + Clone {
    warp::method()
        .and(warp::header::headers_cloned())
        .and(warp::any().map(move || issuer.clone()))
        .and_then(admit_token_request)
        .and(warp::body::content_length_limit(token::MAX_BODY_BYTES))
        .and(warp::body::bytes())
        .and_then(issue_token)
        .recover(token_rejection)
        .unify()
}

async fn admit_token_request(
    method: Method,
    headers: HeaderMap,
    issuer: Option<Arc<Issuer>>,
) -> Result<Arc<Issuer>, Rejection> {
    let refuse = |e: TokenError| warp::reject::custom(WebError::Token(e));
    let issuer = issuer.ok_or_else(|| refuse(TokenError::Disabled))?;
    if method != Method::POST {
        return Err(refuse(TokenError::MethodNotAllowed));
    }
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    token::check_origin(header(ORIGIN), header(HOST)).map_err(refuse)?;
    token::check_content_type(header(CONTENT_TYPE)).map_err(refuse)?;
    Ok(issuer)
}

async fn issue_token(issuer: Arc<Issuer>, body: Bytes) -> Result<AnyResponse, Rejection> {
    let refuse = |e: TokenError| warp::reject::custom(WebError::Token(e));
    let request = token::parse_request(&body).map_err(refuse)?;
    let issued = issuer.issue(request, token::unix_now()).map_err(refuse)?;
    // The user id is what operators correlate with the hubs' logs; the token itself is never logged.
    tracing::info!(sub = %issued.sub, exp = issued.exp, "token issued");
    let mut res = warp::reply::json(&issued).into_response();
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

async fn token_rejection(err: Rejection) -> Result<AnyResponse, Rejection> {
    let known;
    let e = if let Some(WebError::Token(e)) = err.find::<WebError>() {
        e
    } else if err.find::<warp::reject::PayloadTooLarge>().is_some() {
        known = TokenError::TooLarge(token::MAX_BODY_BYTES);
        &known
    } else if err.find::<warp::reject::LengthRequired>().is_some() {
        known = TokenError::LengthRequired;
        &known
    } else {
        return Err(err);
    };
    if e.status().is_server_error() {
        tracing::error!(error = %e, source = ?std::error::Error::source(e), "POST /token failed");
    }
    Ok(token_error_response(e))
}

/// `{"error":{"code":"…","message":"…"}}` with the error's status; never cached.
fn token_error_response(e: &TokenError) -> AnyResponse {
    let body = serde_json::json!({ "error": { "code": e.code(), "message": e.to_string() } });
    let mut res = warp::reply::with_status(warp::reply::json(&body), e.status()).into_response();
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn index(
    settings: Arc<Settings>,
    host: Option<String>,
) -> Result<Response<String>, Rejection> {
    let hub_url = page::hub_url_for(&settings.hub_target(), host.as_deref())
        .ok_or_else(|| warp::reject::custom(WebError::BadHost))?;
    let html = page::render(&settings, &hub_url).map_err(warp::reject::custom)?;
    let csp = page::content_security_policy(&hub_url);
    Response::builder()
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        // The page names the current asset version, so it must be revalidated every time.
        .header(CACHE_CONTROL, "no-cache")
        // The hub URL in it follows the Host it was asked for.
        .header(VARY, "Host")
        .header(CONTENT_SECURITY_POLICY, csp)
        .body(html)
        .map_err(|_| warp::reject::custom(WebError::NotFound))
}

async fn status_page(settings: Arc<Settings>) -> Result<Response<String>, Rejection> {
    let html = page::render_status(&settings).map_err(warp::reject::custom)?;
    Response::builder()
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        .header(CACHE_CONTROL, "no-cache")
        .header(
            CONTENT_SECURITY_POLICY,
            page::STATUS_CONTENT_SECURITY_POLICY,
        )
        .body(html)
        .map_err(|_| warp::reject::custom(WebError::NotFound))
}

/// `GET /status/data[?since=SEQ]`: the hubs now, and the chart points after `since` (all kept
/// without it, or when it is not a number).
fn status_data(query: HashMap<String, String>, status: StatusBoard) -> AnyResponse {
    let since = query.get("since").and_then(|s| s.parse().ok());
    let mut res = warp::reply::json(&status.snapshot(since)).into_response();
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `GET /status/webhooks`: the latest webhook events this server received, newest first.
fn status_webhooks(hooks: Arc<Hooks>) -> AnyResponse {
    let mut res = warp::reply::json(&hooks.log().view(hooks.configured())).into_response();
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn static_file(tail: Tail) -> Result<Response<Bytes>, Rejection> {
    asset_response(static_files::get(tail.as_str()).ok_or(WebError::NotFound)?)
}

/// `/sdk/*`: the JS SDK's modules. Their imports are relative (`./client.js`) and carry no `?v=`, so
/// they are revalidated rather than kept for good: a new SDK must not meet an old cached module.
async fn sdk_file(tail: Tail) -> Result<Response<Bytes>, Rejection> {
    let asset = static_files::get_sdk(tail.as_str()).ok_or(WebError::NotFound)?;
    let mut res = asset_response(asset)?;
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

fn asset_response(asset: static_files::Asset) -> Result<Response<Bytes>, Rejection> {
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
        let env = [("HUB_URL", "ws://hub.test:8080/ws")];
        Arc::new(Settings::load_from(None, env).expect("valid settings"))
    }

    /// A header's value as text ("" when it is missing or not text).
    fn header(res: &Response<Bytes>, name: warp::http::header::HeaderName) -> &str {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// `GET path` from the routes of [`settings`], without a status page.
    async fn get(path: &str) -> Response<Bytes> {
        warp::test::request()
            .path(path)
            .reply(&routes(settings(), StatusBoard::unconfigured()))
            .await
    }

    #[tokio::test]
    async fn index_renders_the_hub_url_with_a_csp() {
        let res = get("/").await;
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

    fn page_from(host: &str) -> warp::test::RequestBuilder {
        warp::test::request().path("/").header("host", host)
    }

    #[tokio::test]
    async fn without_hub_url_the_page_connects_to_the_host_it_was_loaded_from() {
        let env = [("WEB_HUB_PORT", "8081")];
        let routes = routes(
            Arc::new(Settings::load_from(None, env).expect("valid settings")),
            StatusBoard::unconfigured(),
        );
        for (host, hub) in [
            ("localhost:9082", "ws://localhost:8081/ws"),
            ("192.168.1.20:9082", "ws://192.168.1.20:8081/ws"),
            ("chat.lan", "ws://chat.lan:8081/ws"),
            ("[fd00::7]:9082", "ws://[fd00::7]:8081/ws"),
        ] {
            let res = page_from(host).reply(&routes).await;
            assert_eq!(res.status(), 200, "{host}");
            let body = String::from_utf8_lossy(res.body());
            assert!(
                body.contains(&format!(r#"data-hub-url="{hub}""#)),
                "{host}: {body}"
            );
            let csp = res.headers()[CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap_or("");
            assert!(csp.contains(&format!("connect-src 'self' {hub};")), "{csp}");
            assert_eq!(res.headers()[VARY], "Host");
        }
        // Nothing but a host name or address gets into the page or its policy.
        for host in [
            "evil.example; script-src *",
            "a\"b",
            "x:80:90",
            "[zz]:1",
            "",
            "h:",
        ] {
            let res = page_from(host).reply(&routes).await;
            assert_eq!(res.status(), 400, "{host:?}");
        }
        let res = warp::test::request().path("/").reply(&routes).await;
        assert_eq!(res.status(), 400, "no Host header");
        // A sign-in from a page loaded at a LAN address is its own origin: allowed.
        let signing = routes_with(&[("WEB_JWT_SECRET", SECRET)]);
        let res = token_request()
            .header("host", "192.168.1.20:9082")
            .header("origin", "http://192.168.1.20:9082")
            .body(r#"{"name":"Ana"}"#)
            .reply(&signing)
            .await;
        assert_eq!(res.status(), 200);
    }

    fn routes_with(
        pairs: &'static [(&'static str, &'static str)],
    ) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone + use<> {
        routes(
            Arc::new(Settings::load_from(None, pairs.iter().copied()).expect("valid settings")),
            StatusBoard::unconfigured(),
        )
    }

    #[tokio::test]
    async fn the_status_page_is_served_with_a_strict_policy_and_its_data_as_json() {
        let routes = routes_with(&[]);
        let res = warp::test::request().path("/status").reply(&routes).await;
        assert_eq!(res.status(), 200);
        let body = String::from_utf8_lossy(res.body());
        assert!(body.contains("/static/status.js?v="), "{body}");
        assert!(!body.contains("<script>"), "no inline script: {body}");
        let csp = res.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap_or("");
        assert!(csp.contains("connect-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let res = warp::test::request()
            .path("/status/data?since=3")
            .reply(&routes)
            .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
        let data: serde_json::Value = serde_json::from_slice(res.body()).expect("json");
        assert_eq!(data["configured"], false, "{data}");
        assert_eq!(data["hubs"], serde_json::json!([]), "{data}");
        for asset in ["/static/status.js", "/static/status.css"] {
            let res = warp::test::request().path(asset).reply(&routes).await;
            assert_eq!(res.status(), 200, "{asset}");
        }
    }

    #[tokio::test]
    async fn webhook_events_received_show_in_the_status_data() {
        let secret = "routes-hook-secret-0123456789";
        let routes = routes_with(&[("WEB_HOOK_SECRET", "routes-hook-secret-0123456789")]);
        let view = |res: Response<Bytes>| -> serde_json::Value {
            assert_eq!(res.status(), 200);
            serde_json::from_slice(res.body()).expect("json")
        };
        let empty = view(
            warp::test::request()
                .path("/status/webhooks")
                .reply(&routes)
                .await,
        );
        assert_eq!(empty["configured"], true);
        assert_eq!(empty["events"], serde_json::json!([]));
        let body = r#"{"id":"b","time_ms":1,"events":[{"id":"e1","name":"member_added","room":"moderated:lobby","user":{"id":"u1","name":"Ana"},"time_ms":7}]}"#;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let res = warp::test::request()
            .method("POST")
            .path("/hooks/webhooks")
            .header(
                "x-hub-signature",
                hooks::signature::sign(&secret.to_string().into(), body.as_bytes()),
            )
            .header("x-hub-timestamp", now.to_string())
            .body(body)
            .reply(&routes)
            .await;
        assert_eq!(res.status(), 200);
        let seen = view(
            warp::test::request()
                .path("/status/webhooks")
                .reply(&routes)
                .await,
        );
        assert_eq!(seen["events"][0]["name"], "member_added", "{seen}");
        assert_eq!(seen["events"][0]["user"]["name"], "Ana", "{seen}");
        // Without a secret the list is off, and says so.
        let off = view(
            warp::test::request()
                .path("/status/webhooks")
                .reply(&routes_with(&[]))
                .await,
        );
        assert_eq!(off["configured"], false);
    }

    #[tokio::test]
    async fn template_values_are_html_escaped() {
        let env = [("WEB_TITLE", "<b>chat</b> & co")];
        let settings = Arc::new(Settings::load_from(None, env).expect("valid settings"));
        let res = warp::test::request()
            .path("/")
            .header("host", "127.0.0.1:9081")
            .reply(&routes(settings, StatusBoard::unconfigured()))
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
        let res = get("/static/chat.js?v=1").await;
        assert_eq!(res.status(), 200);
        assert!(header(&res, CONTENT_TYPE).starts_with("text/javascript"));
        assert!(header(&res, CACHE_CONTROL).contains("immutable"));
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    }

    #[tokio::test]
    async fn the_sdk_is_served_as_javascript_modules() {
        let res = get("/sdk/index.js").await;
        assert_eq!(res.status(), 200);
        assert!(header(&res, CONTENT_TYPE).starts_with("text/javascript"));
        assert_eq!(res.headers()[CACHE_CONTROL], "no-cache");
        assert!(String::from_utf8_lossy(res.body()).contains("export { HubClient"));
        for path in ["/sdk/", "/sdk/nope.js", "/sdk/../static/chat.js"] {
            assert_eq!(get(path).await.status(), 404, "{path}");
        }
    }

    #[tokio::test]
    async fn missing_files_and_paths_are_404() {
        for path in [
            "/static/nope.js",
            "/static/../Cargo.toml",
            "/nope",
            "/static/",
        ] {
            let res = get(path).await;
            assert_eq!(res.status(), 404, "{path}");
        }
    }

    #[tokio::test]
    async fn health_answers_200_with_json() {
        let res = get("/health").await;
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = serde_json::from_slice(res.body()).expect("json");
        assert_eq!(body["status"], "ok");
        let live = get("/health/live").await;
        assert_eq!(live.status(), 200);
    }

    const SECRET: &str = "routes-test-secret-of-32-bytes-or-more";

    fn signing_settings() -> Arc<Settings> {
        let env = [("WEB_JWT_SECRET", SECRET)];
        Arc::new(Settings::load_from(None, env).expect("valid settings"))
    }

    fn token_request() -> warp::test::RequestBuilder {
        warp::test::request()
            .method("POST")
            .path("/token")
            .header("host", "127.0.0.1:9081")
            .header("origin", "http://127.0.0.1:9081")
            .header("content-type", "application/json")
    }

    fn error_of(res: &warp::http::Response<Bytes>) -> String {
        let body: serde_json::Value =
            serde_json::from_slice(res.body()).expect("a JSON error body");
        assert!(body["error"]["message"].is_string(), "{body}");
        body["error"]["code"].as_str().unwrap_or("").to_string()
    }

    #[tokio::test]
    async fn the_page_says_whether_it_signs_in() {
        for (settings, auth) in [(settings(), "off"), (signing_settings(), "jwt")] {
            let res = warp::test::request()
                .path("/")
                .header("host", "127.0.0.1:9081")
                .reply(&routes(settings, StatusBoard::unconfigured()))
                .await;
            let body = String::from_utf8_lossy(res.body());
            assert!(body.contains(&format!(r#"data-auth="{auth}""#)), "{body}");
            assert!(!body.contains(SECRET), "the secret never reaches the page");
        }
    }

    #[tokio::test]
    async fn token_is_404_without_a_secret() {
        let res = token_request()
            .body(r#"{"name":"Ana"}"#)
            .reply(&routes(settings(), StatusBoard::unconfigured()))
            .await;
        assert_eq!(res.status(), 404);
        assert_eq!(error_of(&res), "not_found");
    }

    #[tokio::test]
    async fn token_answers_json_with_no_store() {
        let res = token_request()
            .body(r#"{"name":"Ana"}"#)
            .reply(&routes(signing_settings(), StatusBoard::unconfigured()))
            .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
        assert!(header(&res, CONTENT_TYPE).starts_with("application/json"));
        let issued: token::Issued = serde_json::from_slice(res.body()).expect("json");
        assert_eq!(issued.name, "Ana");
        assert_eq!(issued.token.split('.').count(), 3);
    }

    #[tokio::test]
    async fn token_refusals_are_json_with_their_status() {
        let routes = routes(signing_settings(), StatusBoard::unconfigured());
        let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(5000));
        let cases = [
            (token_request().method("GET"), 405, "method_not_allowed"),
            (
                token_request().header("origin", "http://evil.example"),
                403,
                "bad_origin",
            ),
            (
                token_request().header("content-type", "text/plain"),
                415,
                "unsupported_media_type",
            ),
            (token_request().body(big), 413, "too_large"),
            (token_request().body(r#"{"name":""}"#), 400, "bad_name"),
            (
                token_request().body(r#"{"name":"Ana","sub":"no"}"#),
                400,
                "bad_sub",
            ),
            (
                token_request().body(r#"{"name":"Ana","broadcast":true}"#),
                400,
                "bad_json",
            ),
        ];
        for (req, status, code) in cases {
            let res = req.reply(&routes).await;
            assert_eq!(res.status(), status, "{code}");
            assert_eq!(error_of(&res), code);
            assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
        }
        // Other paths keep their plain answers.
        let res = warp::test::request().path("/nope").reply(&routes).await;
        assert_eq!(res.status(), 404);
        assert_eq!(res.body().as_ref(), b"Not Found");
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
