//! The demo identity provider on a real server on a free port: a token from `POST /token` verifies with
//! the shared secret and says what was asked; a foreign page, a form post and a bad name are refused.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hub_client_web::Settings;
use hub_client_web::token::Claims;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const SECRET: &str = "integration-test-secret-0123456789abcdef";

/// A running server; dropping it stops it.
struct App {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn spawn_app(env: &[(&str, &str)]) -> App {
    let env = env
        .iter()
        .copied()
        .chain([("HUB_URL", "ws://127.0.0.1:1/ws")]);
    let settings = Settings::load_from(None, env).expect("settings");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(hub_client_web::run(listener, settings, async {
        let _ = stopped.await;
    }));
    App { addr, _stop: stop }
}

struct Answer {
    status: u16,
    head: String,
    body: Value,
}

type Headers<'a> = &'a [(&'a str, &'a str)];

/// One HTTP/1.0 request with the given extra headers; the server closes after answering.
async fn post(addr: SocketAddr, headers: Headers<'_>, body: &str) -> Answer {
    let mut req = format!(
        "POST /token HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .expect("an answer within 5 s")
        .expect("read");
    let (head, body) = out.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON body ({e}): {body}"));
    Answer {
        status,
        head: head.to_ascii_lowercase(),
        body,
    }
}

fn own_origin(app: &App) -> String {
    format!("http://{}", app.addr)
}

#[tokio::test]
async fn a_token_from_the_page_verifies_with_the_shared_secret() {
    let app = spawn_app(&[("WEB_JWT_SECRET", SECRET), ("WEB_TOKEN_TTL", "10m")]).await;
    let origin = own_origin(&app);
    let json = [
        ("Origin", origin.as_str()),
        ("Content-Type", "application/json"),
    ];

    let first = post(app.addr, &json, r#"{"name":"  Ana  "}"#).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        first.head.contains("cache-control: no-store"),
        "{}",
        first.head
    );
    let token = first.body["token"].as_str().expect("a token");
    let sub = first.body["sub"].as_str().expect("a sub").to_string();
    assert_eq!(first.body["name"], "Ana");

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(SECRET.as_bytes()),
        &Validation::new(Algorithm::HS256),
    )
    .expect("the token verifies with the secret the hubs hold");
    assert_eq!(data.claims.sub, sub);
    assert_eq!(data.claims.name, "Ana");
    assert_eq!(data.claims.exp, data.claims.iat + 600);
    assert!(
        data.claims.iat.abs_diff(now) <= 2,
        "iat {} now {now}",
        data.claims.iat
    );
    assert_eq!(first.body["exp"], data.claims.exp);

    // The browser sends its kept sub back (a refresh, or a reload): same user, possibly a new name.
    let body = format!(r#"{{"name":"Ana B","sub":"{sub}"}}"#);
    let again = post(app.addr, &json, &body).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["sub"], sub.as_str());
    assert_eq!(again.body["name"], "Ana B");

    // A different secret does not verify it: the hubs would refuse a token from a misconfigured server.
    let token = again.body["token"].as_str().expect("a token");
    assert!(
        jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(b"some-other-secret-0123456789abcdef"),
            &Validation::new(Algorithm::HS256),
        )
        .is_err()
    );
}

#[tokio::test]
async fn foreign_pages_forms_and_bad_names_are_refused() {
    let app = spawn_app(&[("WEB_JWT_SECRET", SECRET)]).await;
    let origin = own_origin(&app);
    let cases: [(Headers, &str, u16, &str); 7] = [
        // Another site's page making the visitor's browser ask for a token.
        (
            &[
                ("Origin", "http://evil.example"),
                ("Content-Type", "application/json"),
            ],
            r#"{"name":"Ana"}"#,
            403,
            "bad_origin",
        ),
        // Not from a page at all.
        (
            &[("Content-Type", "application/json")],
            r#"{"name":"Ana"}"#,
            403,
            "bad_origin",
        ),
        // What a plain HTML form can send.
        (
            &[
                ("Origin", &origin),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            "name=Ana",
            415,
            "unsupported_media_type",
        ),
        (
            &[("Origin", &origin), ("Content-Type", "application/json")],
            r#"{"name":"   "}"#,
            400,
            "bad_name",
        ),
        (
            &[("Origin", &origin), ("Content-Type", "application/json")],
            r#"{"name":"Ana\u0007"}"#,
            400,
            "bad_name",
        ),
        (
            &[("Origin", &origin), ("Content-Type", "application/json")],
            r#"{"name":"Ana","sub":"../../etc"}"#,
            400,
            "bad_sub",
        ),
        (
            &[("Origin", &origin), ("Content-Type", "application/json")],
            r#"{"name":"Ana","broadcast":true}"#,
            400,
            "bad_json",
        ),
    ];
    for (headers, body, status, code) in cases {
        let answer = post(app.addr, headers, body).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], code, "{body}");
        assert!(answer.body["error"]["message"].is_string());
        assert!(answer.body.get("token").is_none());
    }
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(5000));
    let answer = post(
        app.addr,
        &[("Origin", &origin), ("Content-Type", "application/json")],
        &big,
    )
    .await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.body["error"]["code"], "too_large");
}

#[tokio::test]
async fn without_a_secret_there_is_no_token_endpoint() {
    let app = spawn_app(&[]).await;
    let origin = own_origin(&app);
    let answer = post(
        app.addr,
        &[("Origin", &origin), ("Content-Type", "application/json")],
        r#"{"name":"Ana"}"#,
    )
    .await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["error"]["code"], "not_found");
}
