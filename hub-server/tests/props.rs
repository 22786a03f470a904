//! Issue 14.6: property tests for every parser that reads bytes from outside the hub — client
//! frames (`protocol`), Redis envelopes (`bridge::envelope`), configuration values (`config`) and
//! tokens' claims (`auth::Verifier`). Each must never panic on anything, give back what its
//! serializer wrote (where there is one), and refuse what is invalid.
//!
//! Run: `cargo test -p hub-server --test props` (no processes; 256 cases per property, or
//! `PROPTEST_CASES`; the token verdicts at least 512).

use std::time::Duration;

use hub_server::auth::{Checks, Patterns, Verifier};
use hub_server::bridge::envelope::{self, EnvelopeError, Header};
use hub_server::config::Settings;
use hub_server::error::AuthFailure;
use hub_server::protocol::{Command, Frame, Replay, Room, User};
use jsonwebtoken::{Algorithm, EncodingKey};
use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

const ROOM_CHARS: &str = "[A-Za-z0-9_.:-]";

fn room_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{ROOM_CHARS}{{1,64}}")).expect("regex")
}

/// JSON of any shape, with the field names a client frame uses among random ones, so that the
/// parser's every branch (right keys with wrong types, extra keys, nested values) is reached.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("type".to_owned()),
        Just("room".to_owned()),
        Just("content".to_owned()),
        Just("token".to_owned()),
        Just("history".to_owned()),
        Just("since".to_owned()),
        Just("epoch".to_owned()),
        Just("offset".to_owned()),
        Just("ref".to_owned()),
        Just("user".to_owned()),
        ".{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("join"),
            Just("leave"),
            Just("message"),
            Just("broadcast"),
            Just("ping"),
            Just("presence"),
            Just("auth"),
            Just("general"),
        ]
        .prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    // Failures print their minimal input; nothing is written next to the sources.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    // ---- client frames ----

    #[test]
    fn any_text_frame_parses_or_is_refused_without_a_panic(text in ".*") {
        let _ = Command::parse(&text);
    }

    #[test]
    fn any_json_frame_parses_or_is_refused_without_a_panic(value in json_value()) {
        let text = value.to_string();
        if let (Ok(command), true) = (Command::parse(&text), value.is_object()) {
            // Only the documented types get through (text that is not an object is chat text).
            let kind = value.get("type").and_then(Value::as_str).unwrap_or_default();
            prop_assert!(
                ["join", "leave", "message", "broadcast", "ping", "presence", "auth"].contains(&kind),
                "{text} gave {command:?}"
            );
        }
    }

    #[test]
    fn valid_room_names_are_kept_as_written(name in room_name()) {
        let room = Room::parse(&name).expect("valid");
        prop_assert_eq!(room.as_str(), name.as_str());
    }

    #[test]
    fn invalid_room_names_are_refused(
        good in proptest::string::string_regex(&format!("{ROOM_CHARS}{{0,30}}")).expect("regex"),
        bad in "[^A-Za-z0-9_.:-]",
        at in any::<prop::sample::Index>(),
        long in proptest::string::string_regex(&format!("{ROOM_CHARS}{{65,100}}")).expect("regex"),
    ) {
        let mut chars: Vec<char> = good.chars().collect();
        chars.insert(at.index(chars.len() + 1), bad.chars().next().expect("one char"));
        let with_bad: String = chars.into_iter().collect();
        prop_assert!(Room::parse(&with_bad).is_err(), "{:?}", with_bad);
        prop_assert!(Room::parse(&long).is_err());
        prop_assert!(Room::parse("").is_err());
        // And a frame naming it is an error, never a join.
        let frame = json!({"type": "join", "room": with_bad}).to_string();
        prop_assert!(Command::parse(&frame).is_err());
    }

    /// What a client serializes with any JSON library comes out as the command it meant.
    #[test]
    fn client_frames_round_trip(
        room in room_name(),
        content in ".{1,200}",
        reference in proptest::option::of("[a-z0-9]{1,64}"),
        history in proptest::option::of(0usize..10_000),
    ) {
        let join = match history {
            Some(n) => json!({"type": "join", "room": room, "history": n}),
            None => json!({"type": "join", "room": room}),
        };
        let replay = history.map_or(Replay::None, Replay::Last);
        prop_assert_eq!(
            Command::parse(&join.to_string()).expect("join"),
            Command::Join { room: Room::parse(&room).expect("room"), replay }
        );
        let mut message = json!({"type": "message", "room": room, "content": content});
        if let Some(r) = &reference {
            message["ref"] = json!(r);
        }
        prop_assert_eq!(
            Command::parse(&message.to_string()).expect("message"),
            Command::Message {
                room: Room::parse(&room).expect("room"),
                content: content.clone(),
                reference,
            }
        );
        let broadcast = json!({"type": "broadcast", "content": content});
        prop_assert_eq!(
            Command::parse(&broadcast.to_string()).expect("broadcast"),
            Command::Broadcast { content: content.clone() }
        );
        // A client may not name the sender: `user` is refused.
        let spoof = json!({"type": "message", "room": room, "content": content, "user": {"id": "x"}});
        prop_assert!(Command::parse(&spoof.to_string()).is_err());
    }

    /// The hub's own frames are valid JSON that carries what went in, whatever the content.
    #[test]
    fn chat_frames_are_json_with_the_content_intact(
        content in ".{0,200}",
        name in proptest::option::of(".{0,40}"),
        room in room_name(),
    ) {
        let room = Room::parse(&room).expect("room");
        let frame = Frame::chat("id", Some(&room), "client", User { id: "u", name: name.as_deref() }, &content, "hub");
        let value: Value = serde_json::from_str(frame.as_str()).expect("json");
        prop_assert_eq!(value["content"].as_str(), Some(content.as_str()));
        prop_assert_eq!(value["room"].as_str(), Some(room.as_str()));
        prop_assert_eq!(value["user"]["name"].as_str(), name.as_deref());
    }

    // ---- Redis envelopes ----

    #[test]
    fn any_bytes_from_redis_decode_or_are_refused_without_a_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = envelope::decode(&bytes);
    }

    #[test]
    fn any_json_from_redis_decodes_or_is_refused_without_a_panic(value in json_value()) {
        let _ = envelope::decode(value.to_string().as_bytes());
    }

    #[test]
    fn envelopes_round_trip_with_the_frame_bytes_intact(
        origin in any::<u128>(),
        seq in any::<u64>(),
        n in any::<u64>(),
        local in any::<bool>(),
        content in ".{0,200}",
        room in proptest::option::of(room_name()),
    ) {
        let origin = Uuid::from_u128(origin);
        let id = Uuid::new_v4().to_string();
        let room = room.map(|r| Room::parse(&r).expect("room"));
        let frame = Frame::chat(&id, room.as_ref(), "c", User { id: "u", name: None }, &content, "h");
        let text = envelope::encode(&Header { origin, seq, n, local, id: &id }, &frame);
        let env = envelope::decode(text.as_bytes()).expect("decodes");
        prop_assert_eq!((env.origin, env.seq, env.n, env.local), (origin, seq, n, local));
        prop_assert_eq!(env.id, Some(id.as_str()));
        prop_assert_eq!(env.frame.get(), frame.as_str());
    }

    #[test]
    fn envelopes_of_another_version_are_refused(v in any::<u32>().prop_filter("not ours", |v| *v != envelope::VERSION)) {
        let text = format!(r#"{{"v":{v},"origin":"{}","seq":1,"n":1,"frame":{{}}}}"#, Uuid::new_v4());
        prop_assert!(matches!(envelope::decode(text.as_bytes()), Err(EnvelopeError::Version(got)) if got == v));
    }

    // ---- configuration values ----

    #[test]
    fn any_environment_loads_or_is_refused_without_a_panic(
        vars in prop::collection::vec((
            prop_oneof![
                Just("HUB_SEND_QUEUE"), Just("HUB_SEND_QUEUE_BYTES"), Just("HUB_MAX_MESSAGE_BYTES"),
                Just("HUB_PING_INTERVAL"), Just("HUB_PONG_TIMEOUT"), Just("HUB_LISTEN"),
                Just("HUB_AUTH_MODE"), Just("HUB_LOG_FORMAT"), Just("HUB_HUB_HEARTBEAT"),
                Just("HUB_HUB_TIMEOUT"), Just("HUB_RATE_LIMIT_PER_SEC"), Just("HUB_ALLOWED_ORIGINS"),
                Just("HUB_JWT_DEFAULT_ROOMS"), Just("HUB_HISTORY_TTL"), Just("REDIS_URL"), Just("HUB_NAME"),
            ],
            prop_oneof![".{0,16}", "[0-9]{1,22}", "-?[0-9]{1,4}(ms|s|m|h|d|x)?", Just(String::new())],
        ), 0..5),
    ) {
        let env = vars.into_iter().map(|(k, v)| (k.to_owned(), v));
        let _ = Settings::load_from(None, env);
    }

    #[test]
    fn numbers_and_durations_are_read_as_written_and_zero_is_refused(
        queue in 1usize..1_000_000,
        bytes in 65_536usize..1 << 40,
        ping_ms in 1u64..100_000,
    ) {
        let load = |pairs: &[(&str, String)]| {
            Settings::load_from(None, pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())))
        };
        let s = load(&[
            ("HUB_SEND_QUEUE", queue.to_string()),
            ("HUB_SEND_QUEUE_BYTES", bytes.to_string()),
            ("HUB_PING_INTERVAL", format!("{ping_ms}ms")),
            ("HUB_PONG_TIMEOUT", format!("{}ms", ping_ms * 3)),
        ]).expect("valid");
        prop_assert_eq!(s.send_queue, queue);
        prop_assert_eq!(s.send_queue_bytes, bytes);
        prop_assert_eq!(s.ping_interval, Duration::from_millis(ping_ms));
        for key in ["HUB_SEND_QUEUE", "HUB_SEND_QUEUE_BYTES", "HUB_MAX_CONNECTIONS", "HUB_RATE_LIMIT_PER_SEC"] {
            let err = load(&[(key, "0".into())]).expect_err(key);
            prop_assert!(err.to_string().contains(&key[4..].to_lowercase()), "{key}: {err}");
        }
        // A byte bound below one message would close every client on its first large frame.
        prop_assert!(load(&[("HUB_SEND_QUEUE_BYTES", (bytes % 65_536).to_string())]).is_err());
    }

    // ---- tokens' claims ----

    #[test]
    fn any_token_text_is_refused_without_a_panic(
        token in prop_oneof![
            ".{0,200}",
            // Three base64url parts, the shape of a JWT.
            "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}",
        ],
    ) {
        prop_assert!(verifier().verify(&token).is_err());
    }

    #[test]
    fn good_tokens_give_back_their_claims_and_foreign_ones_are_refused(
        sub in "[A-Za-z0-9_-]{1,40}",
        name in proptest::option::of(".{0,40}"),
        room in room_name(),
        broadcast in any::<bool>(),
        exp_in in 60u64..1_000_000,
    ) {
        let exp = now() + exp_in;
        let mut claims = json!({"sub": sub, "exp": exp, "rooms": [room], "broadcast": broadcast});
        if let Some(name) = &name {
            claims["name"] = json!(name);
        }
        let identity = verifier().verify(&sign(&claims, SECRET)).expect("a good token");
        prop_assert_eq!(&*identity.user_id, sub.as_str());
        // Names are trimmed; an empty one is no name.
        let trimmed = name.as_deref().map(str::trim).filter(|n| !n.is_empty());
        prop_assert_eq!(identity.name.as_deref(), trimmed);
        prop_assert_eq!(identity.expires_at, Some(exp));
        prop_assert!(identity.grants.may_publish(&Room::parse(&room).expect("room")));
        prop_assert_eq!(identity.grants.broadcast, broadcast);
        let other = "another-secret-another-secret-another";
        prop_assert_eq!(verifier().verify(&sign(&claims, other)).err(), Some(AuthFailure::BadSignature));
        let expired = json!({"sub": sub, "exp": now() - 3600});
        prop_assert_eq!(verifier().verify(&sign(&expired, SECRET)).err(), Some(AuthFailure::Expired));
    }
}

/// Claims of every shape a token may carry: each claim the hub reads absent, null, right, or wrong
/// in type or value (`sub` empty or too long, `exp` past, `nbf` future, too many rooms…), among
/// random other claims. The verdict must be what [`verdict`] says the rules give, and every
/// verdict must be reached: a property whose branch never runs proves nothing.
#[test]
fn tokens_with_any_claims_get_the_verdict_the_rules_give() {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    let config = ProptestConfig {
        failure_persistence: None,
        // Enough cases that each of the seven verdicts comes up (the rarest in ~1 case in 25).
        cases: ProptestConfig::default().cases.max(512),
        ..ProptestConfig::default()
    };
    let reached: RefCell<BTreeMap<String, u32>> = RefCell::default();
    let mut runner = proptest::test_runner::TestRunner::new(config);
    runner
        .run(&claims(), |claims| {
            let expected = verdict(&claims, now());
            let got = verifier().verify(&sign(&claims, SECRET));
            prop_assert!(
                expected.contains(&got.as_ref().map(|_| ()).map_err(|e| *e)),
                "{claims}: got {:?}, expected one of {expected:?}",
                got.map(|_| ())
            );
            if let Ok(identity) = &got {
                prop_assert_eq!(Some(&*identity.user_id), claims["sub"].as_str());
                prop_assert_eq!(identity.expires_at, claims["exp"].as_u64());
            }
            let outcome = format!("{:?}", got.map(|_| ()));
            *reached.borrow_mut().entry(outcome).or_default() += 1;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let reached = reached.into_inner();
    eprintln!("verdicts reached: {reached:?}");
    let all = [
        "Ok(())",
        "Err(Malformed)",
        "Err(MissingSub)",
        "Err(MissingExp)",
        "Err(Expired)",
        "Err(NotYetValid)",
        "Err(BadClaims)",
    ];
    for verdict in all {
        assert!(
            reached.contains_key(verdict),
            "{verdict} never reached: {reached:?}"
        );
    }
    assert_eq!(
        reached.len(),
        all.len(),
        "a verdict not foreseen: {reached:?}"
    );
}

/// A claims object: random claims, then each claim the hub reads set (or removed) one of the ways
/// a token may have it.
fn claims() -> impl Strategy<Value = Value> {
    let now = now();
    let sub = prop_oneof![
        8 => "[A-Za-z0-9_-]{1,40}".prop_map(Value::from),
        1 => Just(Value::Null),
        1 => Just(Value::from("")),
        1 => "[a-z]{257,300}".prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
    ];
    let exp = prop_oneof![
        8 => (now + 60..now + 1_000_000).prop_map(Value::from),
        1 => Just(Value::Null),
        4 => (0..now - 60).prop_map(Value::from),
        1 => (now + 60..now + 1_000_000).prop_map(|t| Value::from(t as f64 + 0.5)),
        1 => (-1_000_000i64..0).prop_map(Value::from),
        1 => (now + 60..now + 1_000_000).prop_map(|t| Value::from(t.to_string())),
    ];
    let nbf = prop_oneof![
        4 => (0..now - 60).prop_map(Value::from),
        3 => (now + 60..now + 1_000_000).prop_map(Value::from),
        1 => Just(Value::from("soon")),
    ];
    let name = prop_oneof![
        8 => ".{0,80}".prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
    ];
    let rooms = prop_oneof![
        8 => prop::collection::vec(room_name().prop_map(Value::from), 0..4).prop_map(Value::Array),
        1 => Just(Value::Array(vec![Value::from("r"); 257])),
        1 => Just(Value::from("general")),
    ];
    let broadcast = prop_oneof![
        8 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::from(1)),
    ];
    // Each claim absent one time in five.
    let maybe = |v: BoxedStrategy<Value>| prop::option::weighted(0.8, v);
    (
        json_value(),
        (
            maybe(sub.boxed()),
            maybe(exp.boxed()),
            maybe(nbf.boxed()),
            maybe(name.boxed()),
            maybe(rooms.clone().boxed()),
            maybe(rooms.boxed()),
            maybe(broadcast.boxed()),
        ),
    )
        .prop_map(|(extra, (sub, exp, nbf, name, rooms, read, broadcast))| {
            let mut claims = match extra {
                Value::Object(map) => map,
                _ => serde_json::Map::new(),
            };
            for (key, value) in [
                ("sub", sub),
                ("exp", exp),
                ("nbf", nbf),
                ("name", name),
                ("rooms", rooms),
                ("read", read),
                ("broadcast", broadcast),
            ] {
                match value {
                    Some(value) => claims.insert(key.to_owned(), value),
                    None => claims.remove(key),
                };
            }
            Value::Object(claims)
        })
}

/// What the hub may answer for a token carrying `claims` (signed with its secret), by the rules
/// of `auth::verifier` (its `Claims`), then jsonwebtoken's checks in their order, then the hub's
/// own limits. One answer, but for a token with neither `sub` nor `exp`: jsonwebtoken keeps the
/// required claims in a `HashSet`, so which one it names first differs from run to run.
fn verdict(claims: &Value, now: u64) -> Vec<Result<(), AuthFailure>> {
    match (
        claims.get("sub").is_none_or(Value::is_null),
        claims.get("exp").is_none_or(Value::is_null),
    ) {
        (true, true) if rule(claims, now) != Err(AuthFailure::Malformed) => {
            vec![Err(AuthFailure::MissingSub), Err(AuthFailure::MissingExp)]
        }
        _ => vec![rule(claims, now)],
    }
}

fn rule(claims: &Value, now: u64) -> Result<(), AuthFailure> {
    let given = |key: &str| claims.get(key).filter(|v| !v.is_null());
    // The claims the hub reads must have their type (absent or null is "not given").
    let strings = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
    let typed = given("sub").is_none_or(Value::is_string)
        && given("exp").is_none_or(|v| v.as_u64().is_some())
        && given("name").is_none_or(Value::is_string)
        && given("rooms").is_none_or(strings)
        && given("read").is_none_or(strings)
        // A bool with a default: null is no bool.
        && claims.get("broadcast").is_none_or(Value::is_boolean);
    if !typed {
        return Err(AuthFailure::Malformed);
    }
    let exp = given("exp").and_then(Value::as_u64);
    let sub = given("sub").and_then(Value::as_str);
    let (Some(exp), Some(sub)) = (exp, sub) else {
        return Err(if exp.is_none() {
            AuthFailure::MissingExp
        } else {
            AuthFailure::MissingSub
        });
    };
    let nbf = given("nbf").map(|v| v.as_f64().filter(|n| *n >= 0.0));
    let Some(nbf) = nbf.unwrap_or(Some(0.0)) else {
        return Err(AuthFailure::BadClaims);
    };
    if exp < now {
        return Err(AuthFailure::Expired);
    }
    if nbf > now as f64 {
        return Err(AuthFailure::NotYetValid);
    }
    if sub.is_empty() {
        return Err(AuthFailure::MissingSub);
    }
    let too_many = |key: &str| {
        given(key)
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 256)
    };
    if sub.len() > 256 || too_many("rooms") || too_many("read") {
        return Err(AuthFailure::BadClaims);
    }
    Ok(())
}

const SECRET: &str = "a-secret-of-at-least-thirty-two-bytes";

fn verifier() -> Verifier {
    Verifier::new(
        &[SECRET.to_owned()],
        &[] as &[&str],
        Checks {
            default_rooms: Patterns::everything(),
            ..Checks::default()
        },
    )
    .expect("verifier")
}

fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}
