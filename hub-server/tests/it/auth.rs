//! Issue 10, identity and access, against real hubs bridged through a real Redis: tokens by first
//! frame and by header, every refusal (4001), grants (`forbidden`), refresh and expiry (4002), the
//! per-user limit (4008), rotation and public keys, and that no token or secret is ever printed.

use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::support::client::open_with;
use crate::support::token::{self, OTHER_SECRET, SECRET, claims, hs256, now};
use crate::support::{
    Client, Hub, RECV_TIMEOUT, RedisServer, assert_nothing_more, assert_nothing_more_heralded,
    assert_nothing_more_in, marker, room,
};

/// A hub in jwt mode with `SECRET`, bridged through `redis`, plus `extra` settings.
async fn jwt_hub(name: &str, redis: &RedisServer, extra: &[(&str, &str)]) -> Hub {
    Hub::builder(name)
        .redis(redis)
        .jwt(SECRET)
        .env("HUB_JWT_LEEWAY", "0s")
        .env("RUST_LOG", "debug")
        .envs(extra)
        .start()
        .await
}

/// A client of `hub` signed in as `sub`, allowed to broadcast: the herald of markers.
async fn herald(hub: &Hub, sub: &str) -> Client {
    let mut c = claims(sub, sub, 300);
    c["broadcast"] = json!(true);
    Client::connect_with_token(hub, &hs256(SECRET, &c)).await
}

/// The client is closed with `code` within `within`, having received nothing but `error` frames.
async fn assert_closed_with(client: &mut Client, code: u16, within: Duration) -> Vec<Value> {
    let (got, before) = client.expect_close(within).await;
    assert_eq!(got, Some(code), "close code; frames before: {before:?}");
    for frame in &before {
        assert_eq!(
            frame["type"], "error",
            "only errors before the close: {before:?}"
        );
    }
    before
}

#[tokio::test]
async fn tokens_by_first_frame_or_header_put_the_user_on_every_message_across_hubs() {
    let redis = RedisServer::start().await;
    let hub1 = jwt_hub("hub1", &redis, &[]).await;
    let hub2 = jwt_hub("hub2", &redis, &[]).await;

    let ana_token = hs256(SECRET, &claims("u-ana", "Ana", 300));
    let mut ana = Client::connect_with_token(&hub1, &ana_token).await;
    assert_eq!(ana.welcome["user"], json!({"id": "u-ana", "name": "Ana"}));
    assert_eq!(ana.welcome["rooms"], json!(["general", "user:u-ana"]));

    let mut bob_claims = claims("u-bob", "Bob", 300);
    bob_claims["broadcast"] = json!(true);
    let bob_token = hs256(SECRET, &bob_claims);
    let ws = open_with(&hub2.ws_url(), None, Some(&bob_token))
        .await
        .expect("upgrade with a bearer token");
    let mut bob = Client::from_ws(ws).await;
    assert_eq!(bob.welcome["user"], json!({"id": "u-bob", "name": "Bob"}));
    // `joined` (unlike the welcome) promises cross-hub delivery: wait for it on both hubs.
    ana.join("general").await;
    bob.join("general").await;

    ana.say("general", "hello from ana").await;
    let got = bob.recv_json().await;
    assert_eq!(got["content"], "hello from ana");
    assert_eq!(got["user"], json!({"id": "u-ana", "name": "Ana"}), "{got}");
    assert_eq!(got["from"], ana.id);

    bob.broadcast("hello all").await;
    let got = ana.recv_json().await;
    assert_eq!(
        (got["type"].as_str(), got["content"].as_str()),
        (Some("broadcast"), Some("hello all"))
    );
    assert_eq!(got["user"], json!({"id": "u-bob", "name": "Bob"}), "{got}");

    // A client cannot say who it is: a `user` field is refused and nothing goes out.
    ana.send_json(
        &json!({"type": "message", "room": "general", "content": "spoof",
                          "user": {"id": "u-bob", "name": "Bob"}}),
    )
    .await;
    let err = ana.recv_json().await;
    assert_eq!(err["code"], "bad_json", "{err}");
    assert_nothing_more_in("general", &mut [&mut ana, &mut bob]).await;
}

#[tokio::test]
async fn bad_tokens_are_refused_with_4001_and_nothing_is_delivered_either_way() {
    let redis = RedisServer::start().await;
    let rs_public = token::fixture("rs256-public.pem");
    let hub = jwt_hub(
        "hub1",
        &redis,
        &[
            (
                "HUB_JWT_PUBLIC_KEYS",
                rs_public.to_str().expect("utf-8 path"),
            ),
            ("HUB_JWT_AUDIENCE", "chat"),
            ("HUB_JWT_ISSUER", "https://id.example"),
        ],
    )
    .await;
    let good = |mut c: Value| {
        c["aud"] = json!("chat");
        c["iss"] = json!("https://id.example");
        c
    };
    let mut observer =
        Client::connect_with_token(&hub, &hs256(SECRET, &good(claims("u-obs", "Obs", 300)))).await;

    let public_pem = std::fs::read(&rs_public).expect("public key");
    let without = |key: &str| {
        let mut c = good(claims("u-x", "X", 300));
        c.as_object_mut().expect("object").remove(key);
        c
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "bad signature",
            hs256(OTHER_SECRET, &good(claims("u-x", "X", 300))),
            "bad signature",
        ),
        (
            "alg none",
            token::unsigned(&good(claims("u-x", "X", 300))),
            "auth failed",
        ),
        (
            "HS256 signed with the RSA public key",
            token::hs256_claiming("HS256", &public_pem, &good(claims("u-x", "X", 300))),
            "bad signature",
        ),
        (
            "RS256 header, HMAC signature with the public key",
            token::hs256_claiming("RS256", &public_pem, &good(claims("u-x", "X", 300))),
            "auth failed",
        ),
        (
            "expired",
            hs256(SECRET, &good(claims("u-x", "X", -5))),
            "token expired",
        ),
        ("no sub", hs256(SECRET, &without("sub")), "no sub"),
        ("no exp", hs256(SECRET, &without("exp")), "no exp"),
        (
            "wrong aud",
            hs256(SECRET, &{
                let mut c = good(claims("u-x", "X", 300));
                c["aud"] = json!("other");
                c
            }),
            "wrong audience",
        ),
        ("no aud", hs256(SECRET, &without("aud")), "wrong audience"),
        ("no iss", hs256(SECRET, &without("iss")), "wrong issuer"),
        (
            "wrong iss",
            hs256(SECRET, &{
                let mut c = good(claims("u-x", "X", 300));
                c["iss"] = json!("https://evil.example");
                c
            }),
            "wrong issuer",
        ),
        ("garbage", "not-a-jwt".to_owned(), "malformed"),
    ];
    for (case, bad, reason) in &cases {
        // First frame.
        let mut client = Client::connect_unwelcomed(&hub).await;
        client.auth(bad).await;
        eprintln!("case: {case}");
        assert_closed_with(&mut client, 4001, RECV_TIMEOUT).await;
        let got = client.close_reason.clone().unwrap_or_default();
        assert!(
            got.contains(reason),
            "{case}: close reason {got:?} lacks {reason:?}"
        );
        // Header.
        let ws = open_with(&hub.ws_url(), None, Some(bad))
            .await
            .expect("upgrade");
        let mut client = Client::unwelcomed(ws);
        assert_closed_with(&mut client, 4001, RECV_TIMEOUT).await;
    }
    // The RS256 key itself works: the refusals above are not for want of it.
    let mut rs = Client::connect_with_token(
        &hub,
        &token::signed(Algorithm::RS256, &good(claims("u-rs", "Rs", 300))),
    )
    .await;
    assert_eq!(rs.welcome["user"]["id"], "u-rs");
    // Nothing of the refused clients reached the observer before a marker said after them.
    let mark = marker("refused");
    rs.say("general", &mark).await;
    observer.expect_marker(&mark).await;
}

#[tokio::test]
async fn until_a_token_comes_frames_get_unauthenticated_and_none_travels() {
    let redis = RedisServer::start().await;
    let hub = jwt_hub("hub1", &redis, &[("HUB_AUTH_TIMEOUT", "1500ms")]).await;
    let mut member =
        Client::connect_with_token(&hub, &hs256(SECRET, &claims("u-m", "M", 300))).await;

    // The hub's auth timer starts between `before` and `started`: "not before 1.5 s" is measured
    // from the first, "within 1.5 s + slack" from the second.
    let before = Instant::now();
    let mut stranger = Client::connect_unwelcomed(&hub).await;
    let started = Instant::now();
    stranger.say("general", "let me in").await;
    stranger.send_text("plain text too").await;
    stranger
        .send_json(&json!({"type": "join", "room": "general"}))
        .await;
    for _ in 0..3 {
        let err = stranger.recv_json().await;
        assert_eq!(err["code"], "unauthenticated", "{err}");
    }
    member.say("general", "members only").await;
    let got = assert_closed_with(&mut stranger, 4001, Duration::from_secs(5)).await;
    let (at_least, at_most) = (before.elapsed(), started.elapsed());
    assert!(got.is_empty(), "the stranger got {got:?}");
    assert!(
        at_least >= Duration::from_millis(1490),
        "closed after at most {at_least:?}, before auth_timeout (1.5 s)"
    );
    // 1.5 s + 2 s of slack for a loaded machine.
    assert!(
        at_most < Duration::from_millis(3500),
        "closed after at least {at_most:?}, auth_timeout is 1.5 s"
    );
    assert!(
        stranger
            .close_reason
            .as_deref()
            .unwrap_or_default()
            .contains("no token")
    );
    // None of the stranger's frames reached the member before a marker said after them.
    let mut other =
        Client::connect_with_token(&hub, &hs256(SECRET, &claims("u-o", "O", 300))).await;
    let mark = marker("stranger");
    other.say("general", &mark).await;
    member.expect_marker(&mark).await;
}

#[tokio::test]
async fn rotation_every_secret_and_every_public_key_kind_verifies() {
    let redis = RedisServer::start().await;
    let keys = ["rs256-public.pem", "es256-public.pem", "ed25519-public.pem"]
        .map(|k| token::fixture(k).to_str().expect("utf-8").to_owned())
        .join(",");
    let secrets = format!("{OTHER_SECRET},{SECRET}");
    let hub = jwt_hub(
        "hub1",
        &redis,
        &[
            ("HUB_JWT_SECRETS", &secrets),
            ("HUB_JWT_PUBLIC_KEYS", &keys),
        ],
    )
    .await;
    let tokens = [
        ("new secret", hs256(OTHER_SECRET, &claims("u1", "One", 300))),
        ("old secret", hs256(SECRET, &claims("u2", "Two", 300))),
        (
            "RS256",
            token::signed(Algorithm::RS256, &claims("u3", "Three", 300)),
        ),
        (
            "ES256",
            token::signed(Algorithm::ES256, &claims("u4", "Four", 300)),
        ),
        (
            "EdDSA",
            token::signed(Algorithm::EdDSA, &claims("u5", "Five", 300)),
        ),
    ];
    for (i, (kind, tok)) in tokens.iter().enumerate() {
        let client = Client::connect_with_token(&hub, tok).await;
        let want = format!("u{}", i + 1);
        assert_eq!(
            client.welcome["user"]["id"],
            want.as_str(),
            "{kind}: {}",
            client.welcome
        );
    }
    let retired = "retired-secret-0123456789-abcdefghijklmnopqrstuvw";
    let mut client = Client::connect_unwelcomed(&hub).await;
    client
        .auth(&hs256(retired, &claims("u6", "Six", 300)))
        .await;
    assert_closed_with(&mut client, 4001, RECV_TIMEOUT).await;
}

#[tokio::test]
async fn grants_decide_what_a_user_may_join_and_publish_and_the_connection_stays() {
    let redis = RedisServer::start().await;
    let hub1 = jwt_hub(
        "hub1",
        &redis,
        &[("HUB_JWT_DEFAULT_ROOMS", "lobby,public.*")],
    )
    .await;
    let hub2 = jwt_hub("hub2", &redis, &[]).await;
    let team = room("team-42");
    let news = room("news");

    // A reader of news on hub2 who may publish there.
    let mut editor =
        Client::connect_with_token(&hub2, &hs256(SECRET, &claims("u-ed", "Ed", 300))).await;
    editor.join(&news).await;

    let mut limited = claims("u-lim", "Lim", 300);
    limited["rooms"] = json!(["team-42*"]);
    limited["read"] = json!([news]);
    let mut user = Client::connect_with_token(&hub1, &hs256(SECRET, &limited)).await;
    assert_eq!(
        user.welcome["rooms"],
        json!(["user:u-lim"]),
        "general is outside the grants; the personal room is the user's own"
    );

    let forbidden = |frame: &Value| frame["type"] == "error" && frame["code"] == "forbidden";
    for frame in [
        json!({"type": "join", "room": "general"}),
        json!({"type": "join", "room": "elsewhere"}),
        json!({"type": "message", "room": news, "content": "I may only read"}),
        json!({"type": "message", "content": "to general"}),
        json!({"type": "broadcast", "content": "to everyone"}),
    ] {
        user.send_json(&frame).await;
        let got = user.recv_json().await;
        assert!(forbidden(&got), "{frame} → {got}");
    }
    user.join(&team).await;
    user.join(&news).await;
    editor.say(&news, "headline").await;
    assert_eq!(user.recv_json().await["content"], "headline");
    user.send_json(&json!({"type": "ping"})).await;
    assert_eq!(
        user.recv_json().await["type"],
        "pong",
        "the connection stays after forbidden"
    );

    // HUB_JWT_DEFAULT_ROOMS applies to tokens without `rooms`.
    let mut plain =
        Client::connect_with_token(&hub1, &hs256(SECRET, &claims("u-p", "P", 300))).await;
    assert_eq!(plain.welcome["rooms"], json!(["user:u-p"]));
    plain.join("lobby").await;
    plain.join("public.square").await;
    plain
        .send_json(&json!({"type": "join", "room": "private"}))
        .await;
    let refused = plain.recv_json().await;
    assert!(forbidden(&refused));
    assert_eq!(
        refused["room"], "private",
        "a join's error names its room: {refused}"
    );

    // Nothing forbidden went anywhere: markers broadcast on both hubs after it all come first.
    assert_nothing_more_heralded(
        &mut [
            &mut herald(&hub1, "u-h1").await,
            &mut herald(&hub2, "u-h2").await,
        ],
        &mut [&mut user, &mut editor, &mut plain],
    )
    .await;
}

#[tokio::test]
async fn a_refresh_keeps_the_connection_and_without_one_it_closes_4002_at_exp() {
    let redis = RedisServer::start().await;
    let hub = jwt_hub("hub1", &redis, &[]).await;
    let exp = now() + 3;
    let short = |sub: &str| hs256(SECRET, &json!({"sub": sub, "name": sub, "exp": exp}));
    let mut refreshed = Client::connect_with_token(&hub, &short("u-r")).await;
    let mut lapsing = Client::connect_with_token(&hub, &short("u-l")).await;
    let mut hijacked = Client::connect_with_token(&hub, &short("u-h")).await;

    refreshed
        .auth(&hs256(SECRET, &claims("u-r", "Renamed", 60)))
        .await;
    let ok = refreshed.recv_json().await;
    assert_eq!(ok["type"], "authenticated", "{ok}");
    assert_eq!(ok["user"], json!({"id": "u-r", "name": "Renamed"}));

    hijacked
        .auth(&hs256(SECRET, &claims("u-other", "Other", 60)))
        .await;
    assert_closed_with(&mut hijacked, 4001, RECV_TIMEOUT).await;
    assert!(
        hijacked
            .close_reason
            .as_deref()
            .unwrap_or_default()
            .contains("another user")
    );

    assert_closed_with(&mut lapsing, 4002, Duration::from_secs(6)).await;
    assert!(now() >= exp, "closed before exp");

    refreshed.say("general", "still here").await;
    refreshed.send_json(&json!({"type": "ping"})).await;
    assert_eq!(refreshed.recv_json().await["type"], "pong");
}

#[tokio::test]
async fn one_user_gets_at_most_max_connections_per_user_on_a_hub() {
    let redis = RedisServer::start().await;
    let hub = jwt_hub("hub1", &redis, &[("HUB_MAX_CONNECTIONS_PER_USER", "2")]).await;
    let ana = hs256(SECRET, &claims("u-ana", "Ana", 300));
    let first = Client::connect_with_token(&hub, &ana).await;
    let _second = Client::connect_with_token(&hub, &ana).await;
    let mut third = Client::connect_unwelcomed(&hub).await;
    third.auth(&ana).await;
    assert_closed_with(&mut third, 4008, RECV_TIMEOUT).await;
    let _bob = Client::connect_with_token(&hub, &hs256(SECRET, &claims("u-bob", "Bob", 300))).await;
    drop(first);
    // The hub notices the dropped socket, then the place is free again.
    let deadline = Instant::now() + RECV_TIMEOUT;
    loop {
        let mut again = Client::connect_unwelcomed(&hub).await;
        again.auth(&ana).await;
        match again.next_event(RECV_TIMEOUT).await {
            Some(crate::support::Event::Frame(f)) if f["type"] == "welcome" => break,
            other => assert!(Instant::now() < deadline, "no place came back: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn no_token_secret_or_signature_reaches_a_log_an_error_frame_or_health() {
    let redis = RedisServer::start().await;
    let hub = jwt_hub("hub1", &redis, &[]).await;
    let good = hs256(SECRET, &claims("u-ana", "Ana", 300));
    let forged = hs256(OTHER_SECRET, &claims("u-eve", "Eve", 300));
    let mut ana = Client::connect_with_token(&hub, &good).await;
    ana.auth(&good).await;
    assert_eq!(ana.recv_json().await["type"], "authenticated");
    ana.send_json(&json!({"type": "auth", "token": good, "room": "x"}))
        .await;
    let mut frames = vec![ana.recv_json().await];
    let mut eve = Client::connect_unwelcomed(&hub).await;
    eve.send_json(&json!({"type": "message", "content": forged}))
        .await;
    frames.push(eve.recv_json().await);
    eve.auth(&forged).await;
    frames.extend(assert_closed_with(&mut eve, 4001, RECV_TIMEOUT).await);
    let ws = open_with(&hub.ws_url(), None, Some(&forged))
        .await
        .expect("upgrade");
    assert_closed_with(&mut Client::unwelcomed(ws), 4001, RECV_TIMEOUT).await;
    let health = hub.health().await.expect("health").body;

    let log = hub.log();
    assert!(
        log.contains("token refused"),
        "the refusal is logged (debug log on):\n{log}"
    );
    let signature = |t: &str| t.rsplit('.').next().unwrap_or_default().to_owned();
    let payload = |t: &str| t.split('.').nth(1).unwrap_or_default().to_owned();
    for needle in [
        SECRET.to_owned(),
        OTHER_SECRET.to_owned(),
        good.clone(),
        forged.clone(),
        signature(&good),
        signature(&forged),
        payload(&good),
        payload(&forged),
    ] {
        assert!(!log.contains(&needle), "the hub log holds {needle:?}");
        assert!(!health.contains(&needle), "/health holds {needle:?}");
        for frame in &frames {
            assert!(
                !frame.to_string().contains(&needle),
                "an error frame holds it: {frame}"
            );
        }
    }
    assert_eq!(frames.len(), 2, "{frames:?}");
}

#[tokio::test]
async fn with_auth_off_users_are_their_client_ids_and_tokens_are_not_checked() {
    let redis = RedisServer::start().await;
    let hub1 = Hub::with_redis("hub1", &redis).await;
    let hub2 = Hub::with_redis("hub2", &redis).await;
    let mut a = Client::connect(&hub1).await;
    let mut b = Client::connect(&hub2).await;
    assert_eq!(a.welcome["user"], json!({"id": a.id}));
    b.join("general").await;
    a.say("general", "anonymous").await;
    let got = b.recv_json().await;
    assert_eq!(
        got["user"],
        json!({"id": a.id}),
        "no name in off mode: {got}"
    );
    b.auth("whatever").await;
    assert_eq!(b.recv_json().await["code"], "auth_off");
    assert_nothing_more(&mut [&mut a, &mut b]).await;
}

#[tokio::test]
async fn a_token_that_never_expires_is_admitted_and_cleaned_up_and_a_narrower_refresh_leaves_rooms()
{
    let redis = RedisServer::start().await;
    let hub = jwt_hub("hub1", &redis, &[]).await;
    let forever = hs256(
        SECRET,
        &json!({"sub": "u-f", "name": "F", "exp": u64::MAX / 2}),
    );
    let mut f = Client::connect_with_token(&hub, &forever).await;
    assert_eq!(f.welcome["user"]["id"], "u-f");
    f.send_json(&json!({"type": "ping"})).await;
    assert_eq!(
        f.recv_json().await["type"],
        "pong",
        "the session survived its expiry timer"
    );
    drop(f);
    let deadline = Instant::now() + RECV_TIMEOUT;
    while hub.connections().await != Some(0) {
        assert!(
            Instant::now() < deadline,
            "the connection was never cleaned up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut n = Client::connect_with_token(&hub, &hs256(SECRET, &claims("u-n", "N", 60))).await;
    let r = room("kept");
    n.join(&r).await;
    let mut narrower = claims("u-n", "N", 60);
    narrower["rooms"] = json!([r]);
    n.auth(&hs256(SECRET, &narrower)).await;
    assert_eq!(n.recv_json().await["type"], "authenticated");
    assert_eq!(
        n.recv_json().await,
        json!({"type": "left", "room": "general"})
    );
    // Nothing more, and n is still in the room it kept: a marker said there is its next frame.
    let mut m = Client::connect_with_token(&hub, &hs256(SECRET, &claims("u-m", "M", 60))).await;
    m.join(&r).await;
    let mark = marker("kept");
    m.say(&r, &mark).await;
    n.expect_marker(&mark).await;
}
