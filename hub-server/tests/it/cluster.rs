//! Issue 15: hubs on a real Redis Cluster (`REDIS_CLUSTER_NODES`, six nodes, three masters).
//! Rooms travel by sharded pub/sub (SPUBLISH inside the append script, SSUBSCRIBE on the room's
//! master only), a room's history and presence keys share its slot (no CROSSSLOT), recovery with
//! `since` works as on one Redis, and a master SIGKILLed while clients talk is replaced by its
//! replica: the hubs follow and lose nothing that reached Redis.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::cluster::RedisCluster;
use crate::support::{Client, Event, Hub, Sent, assert_nothing_more_in, assert_receives, room};

const API_KEY: &str = "cluster-test-api-key-0123456789abcdef";

/// A hub on the cluster, with the server API on.
async fn cluster_hub(name: &str, cluster: &RedisCluster, prefix: &str) -> Hub {
    Hub::builder(name)
        .api(API_KEY)
        .env("REDIS_CLUSTER_NODES", &cluster.nodes_env())
        .env("HUB_REDIS_PREFIX", prefix)
        .env("HUB_REDIS_TIMEOUT", "1s")
        .env("HUB_RECONNECT_MAX", "1s")
        // The tests count each master's sharded subscribers per room: personal rooms' channels
        // would land on masters of their own.
        .env("HUB_PERSONAL_ROOMS", "false")
        .start()
        .await
}

/// Which master serves `slot` in `masters` (port → slot ranges).
fn owner(masters: &HashMap<u16, Vec<(u16, u16)>>, slot: u16) -> u16 {
    *masters
        .iter()
        .find(|(_, ranges)| ranges.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
        .expect("every slot is served")
        .0
}

/// `per_master` room names on each master (by `CLUSTER KEYSLOT` of the room's hash tag).
async fn rooms_on(
    cluster: &RedisCluster,
    masters: &HashMap<u16, Vec<(u16, u16)>>,
    per_master: usize,
) -> HashMap<u16, Vec<String>> {
    let mut rooms: HashMap<u16, Vec<String>> = masters.keys().map(|m| (*m, Vec::new())).collect();
    for i in 0..10_000 {
        if rooms.values().all(|r| r.len() >= per_master) {
            return rooms;
        }
        let name = room(&format!("c{i}"));
        let master = owner(masters, cluster.keyslot(&format!("{{{name}}}")).await);
        let list = rooms.get_mut(&master).expect("a master");
        if list.len() < per_master {
            list.push(name);
        }
    }
    panic!("no {per_master} rooms per master found");
}

/// A prefix whose broadcast and control channels (sharded, one slot each) are served by `master`.
async fn prefix_on(
    cluster: &RedisCluster,
    masters: &HashMap<u16, Vec<(u16, u16)>>,
    master: u16,
) -> String {
    for i in 0..10_000 {
        let prefix = format!("t{i}:");
        let b = owner(
            masters,
            cluster.keyslot(&format!("{prefix}broadcast")).await,
        );
        let c = owner(masters, cluster.keyslot(&format!("{prefix}control")).await);
        if b == master && c == master {
            return prefix;
        }
    }
    panic!("no prefix puts broadcast and control on {master}");
}

/// The clients with at least one sharded subscription on node `port` (CLIENT LIST `ssub=`).
async fn sharded_subscribers(cluster: &RedisCluster, port: u16) -> Vec<String> {
    let list: String = cluster.on(port, redis::cmd("CLIENT").arg("LIST")).await;
    list.lines()
        .filter(|l| {
            l.split(' ')
                .find_map(|f| f.strip_prefix("ssub="))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n > 0)
        })
        .map(str::to_owned)
        .collect()
}

fn assert_clean_log(hub: &Hub) {
    let log = hub.log();
    for bad in [
        "CROSSSLOT",
        "redis refused",
        "panicked",
        "presence: redis write failed",
    ] {
        assert!(
            !log.contains(bad),
            "hub {} logged {bad:?}:\n{log}",
            hub.name
        );
    }
}

/// Must hold 1 and 2: 30 rooms over three masters, three hubs; exactly-once delivery; only
/// sharded commands on each master; subscriptions only where a hub has rooms; history appends
/// without CROSSSLOT, acks with offsets, recovery with `since`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_travel_by_sharded_pubsub_on_their_own_master_and_recover_with_since() {
    let cluster = RedisCluster::start().await;
    let masters = cluster.masters().await;
    assert_eq!(masters.len(), 3, "three masters: {masters:?}");
    // Every client is put in `general` on connect: its master is A, and so are the broadcast and
    // control channels, so that B and C see only the subscriptions of their rooms' members.
    let a = owner(&masters, cluster.keyslot("{general}").await);
    let mut others = masters.keys().copied().filter(|p| *p != a);
    let (b, c) = (others.next().expect("B"), others.next().expect("C"));
    let prefix = prefix_on(&cluster, &masters, a).await;
    let rooms = rooms_on(&cluster, &masters, 10).await;
    let hubs = [
        cluster_hub("hub1", &cluster, &prefix).await,
        cluster_hub("hub2", &cluster, &prefix).await,
        cluster_hub("hub3", &cluster, &prefix).await,
    ];

    // Hubs 1 and 2 have a member in every room; hub 3 only in A's rooms.
    struct Member {
        hub: usize,
        client: Client,
    }
    let mut members: Vec<(String, u16, Vec<Member>)> = Vec::new();
    let mut epochs: HashMap<String, String> = HashMap::new();
    for (&master, names) in &rooms {
        for name in names {
            let mut list = Vec::new();
            let on: &[usize] = if master == a { &[0, 1, 2] } else { &[0, 1] };
            for &h in on {
                let mut client = Client::connect(&hubs[h]).await;
                let joined = client.join(name).await;
                let epoch = joined["epoch"].as_str().expect("an epoch").to_owned();
                assert_eq!(
                    epochs.entry(name.clone()).or_insert_with(|| epoch.clone()),
                    &epoch,
                    "one epoch per room on every hub"
                );
                list.push(Member { hub: h, client });
            }
            members.push((name.clone(), master, list));
        }
    }
    for port in [a, b, c] {
        let _: () = cluster
            .on(port, redis::cmd("CONFIG").arg("RESETSTAT"))
            .await;
    }

    // Every member says two messages; every other member gets each exactly once.
    let mut said: HashMap<u16, u64> = HashMap::new();
    for (name, master, list) in &mut members {
        for m in list.iter_mut() {
            for i in 0..2 {
                m.client.say(name, &format!("{}-{i}", m.client.id)).await;
            }
        }
        *said.entry(*master).or_default() += 2 * list.len() as u64;
    }
    for (name, _, list) in &mut members {
        let who: Vec<(String, String, Vec<String>)> = list
            .iter()
            .map(|m| {
                let id = m.client.id.clone();
                let contents = (0..2).map(|i| format!("{id}-{i}")).collect();
                (id, hubs[m.hub].name.clone(), contents)
            })
            .collect();
        for m in list.iter_mut() {
            let sent: Vec<Sent<'_>> = who
                .iter()
                .filter(|(id, _, _)| *id != m.client.id)
                .map(|(id, hub, contents)| Sent {
                    from: id,
                    hub,
                    contents,
                })
                .collect();
            assert_receives(&mut m.client, "message", Some(name), &sent).await;
        }
    }
    // Nothing more in any room: each member says a marker there, through the room's master as
    // its messages went, and the markers must come before anything else.
    for (name, master, list) in &mut members {
        *said.entry(*master).or_default() += list.len() as u64;
        let mut clients: Vec<&mut Client> = list.iter_mut().map(|m| &mut m.client).collect();
        assert_nothing_more_in(name, &mut clients).await;
    }

    // Each master carried its own rooms' messages with SPUBLISH (from the append script), and
    // not one plain PUBLISH.
    for port in [a, b, c] {
        let (publish, spublish, evalsha) = (
            cluster.calls(port, "publish").await,
            cluster.calls(port, "spublish").await,
            cluster.calls(port, "evalsha").await,
        );
        println!(
            "master {port}: publish {publish}, spublish {spublish}, evalsha {evalsha}, room messages {}",
            said[&port]
        );
        assert_eq!(publish, 0, "plain PUBLISH on master {port}");
        assert!(
            spublish >= said[&port] && evalsha >= said[&port],
            "master {port}: {spublish} SPUBLISH, {evalsha} EVALSHA for {} room messages",
            said[&port]
        );
    }

    // A hub subscribes only where it has rooms: A holds the three hubs (hub 3's rooms, and
    // broadcast/control), B and C hubs 1 and 2 only; replicas none.
    let subs: Vec<Vec<String>> =
        futures_util::future::join_all([a, b, c].map(|p| sharded_subscribers(&cluster, p))).await;
    let counts: Vec<usize> = subs.iter().map(Vec::len).collect();
    println!("sharded subscriber connections on A, B, C: {counts:?}");
    assert_eq!(
        counts,
        vec![3, 2, 2],
        "hubs subscribed on masters without their rooms: {subs:#?}"
    );
    for (name, master, list) in &members {
        let channel = format!("{prefix}room:{{{name}}}");
        let counts: HashMap<String, i64> = cluster
            .on(
                *master,
                redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(&channel),
            )
            .await;
        assert_eq!(counts[&channel], list.len() as i64, "{channel} on {master}");
        // The room's history and presence keys are on the room's master too.
        for key in [
            format!("{prefix}history:{{{name}}}"),
            format!("{prefix}meta:{{{name}}}"),
            format!("{prefix}presence-users:{{{name}}}"),
        ] {
            let n: i64 = cluster.on(*master, redis::cmd("EXISTS").arg(&key)).await;
            assert_eq!(n, 1, "{key} not on the room's master {master}");
        }
    }

    // Acks carry offsets (the append worked), and a late joiner on another hub recovers with
    // `since` exactly what it asks for, in one room per master.
    let mut seen_masters = BTreeSet::new();
    for (name, master, list) in &mut members {
        if !seen_masters.insert(*master) {
            continue;
        }
        // Two messages and a marker per member.
        let total = 3 * list.len() as u64;
        let first = &mut list[0].client;
        first
            .send_json(&json!({"type": "message", "room": name, "content": "last", "ref": "r1"}))
            .await;
        let ack = first.recv_json().await;
        assert_eq!(
            (ack["type"].as_str(), ack["offset"].as_u64()),
            (Some("ack"), Some(total + 1)),
            "{ack}"
        );
        for m in list.iter_mut().skip(1) {
            m.client.recv_chat(1).await;
        }
        let mut reader = Client::connect(&hubs[2]).await;
        reader
            .send_json(&json!({"type": "join", "room": name, "since": {"epoch": epochs[name.as_str()], "offset": 2}}))
            .await;
        let mut replayed = Vec::new();
        loop {
            let f = reader.recv_json().await;
            if f["type"] == "joined" {
                assert_eq!(f["offset"].as_u64(), Some(total + 1), "{f}");
                break;
            }
            assert_eq!(f["replayed"], true, "{f}");
            replayed.push(f["offset"].as_u64().expect("offset"));
        }
        assert_eq!(replayed, (3..=total + 1).collect::<Vec<_>>(), "room {name}");
    }

    // The server API on a cluster: presence and rooms read keys of many slots, an idempotent
    // publish, a broadcast and a disconnect order (sharded channels of their own) reach every hub.
    let (name_b, _, list_b) = members
        .iter_mut()
        .find(|(_, master, _)| *master == b)
        .expect("a room on B");
    let presence = hubs[2]
        .api("GET", &format!("/api/rooms/{name_b}/presence"), None)
        .await;
    assert_eq!(presence.status, 200, "{presence:?}");
    assert_eq!(presence.json()["count"], list_b.len(), "{presence:?}");
    let listed = hubs[0].api("GET", "/api/rooms", None).await.json();
    let listed: BTreeSet<&str> = listed["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .filter_map(|r| r["room"].as_str())
        .collect();
    for name in rooms.values().flatten() {
        assert!(listed.contains(name.as_str()), "{name} not in {listed:?}");
    }
    let key = format!("k-{}", uuid::Uuid::new_v4().simple());
    let body = json!({"room": name_b, "content": "api", "idempotency_key": key});
    let first = hubs[2].api_post("/api/publish", &body).await.json();
    let again = hubs[1].api_post("/api/publish", &body).await.json();
    assert_eq!(first, again, "idempotent across hubs");
    for m in list_b.iter_mut() {
        let f = &m.client.recv_chat(1).await[0];
        assert_eq!(
            (f["content"].as_str(), &f["id"]),
            (Some("api"), &first["id"])
        );
    }
    let broadcast = hubs[1]
        .api_post("/api/broadcast", &json!({"content": "all"}))
        .await;
    assert_eq!(broadcast.status, 200, "{broadcast:?}");
    for m in list_b.iter_mut() {
        let f = &m.client.recv_chat(1).await[0];
        assert_eq!(
            (f["type"].as_str(), f["content"].as_str()),
            (Some("broadcast"), Some("all"))
        );
    }
    let victim = &mut list_b[1].client; // on hub 2, ordered through hub 3
    let user = victim.id.clone();
    let order = hubs[2]
        .api_post("/api/disconnect", &json!({"user": user}))
        .await;
    assert_eq!(order.json()["disconnected"], true, "{order:?}");
    let (code, _) = victim.expect_close(Duration::from_secs(5)).await;
    assert_eq!(code, Some(4003));
    let registry = hubs[0].api("GET", "/api/hubs", None).await.json();
    assert_eq!(
        registry["hubs"].as_array().map(Vec::len),
        Some(3),
        "{registry}"
    );

    for hub in &hubs {
        assert_clean_log(hub);
        let health = hub.health().await.expect("health");
        assert_eq!(health.status, 200, "{}", health.body);
    }
}

/// Must hold 3: a master SIGKILLed while clients talk in rooms on it and on another master.
/// Its replica takes over, the hubs resubscribe, delivery resumes within 15 s, and a reader that
/// recovers with `since` gets every acknowledged message exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_is_replaced_and_delivery_resumes_with_nothing_stored_lost() {
    let mut cluster = RedisCluster::start().await;
    let masters = cluster.masters().await;
    let mut ports: Vec<u16> = masters.keys().copied().collect();
    ports.sort_unstable();
    let (victim, other) = (ports[0], ports[1]);
    let prefix = prefix_on(&cluster, &masters, ports[2]).await;
    let rooms = rooms_on(&cluster, &masters, 1).await;
    let names = [rooms[&victim][0].clone(), rooms[&other][0].clone()];
    let hub1 = cluster_hub("hub1", &cluster, &prefix).await;
    let hub2 = cluster_hub("hub2", &cluster, &prefix).await;

    let mut epochs = Vec::new();
    let mut talk = Talk::default();
    for name in &names {
        let mut w = Client::connect(&hub1).await;
        let joined = w.join(name).await;
        epochs.push(joined["epoch"].as_str().expect("epoch").to_owned());
        let mut r = Client::connect(&hub2).await;
        r.join(name).await;
        talk.rooms.push(TalkRoom {
            name: name.clone(),
            writer: w,
            reader: r,
            received: Vec::new(),
            acked: HashMap::new(),
        });
    }

    // Talk: one message per room every 100 ms; the readers take what comes.
    for _ in 0..10 {
        talk.round().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        talk.rooms[0].received.len(),
        10,
        "before the kill: {:?}",
        talk.rooms[0].received
    );

    let killed_at = Instant::now();
    let first_after = talk.sent;
    cluster.kill(victim);
    println!("killed master {victim} at message {first_after}");
    // Talk on until the victim's room delivers a message sent after the kill, 15 s at most.
    let mut resumed = None;
    while killed_at.elapsed() < Duration::from_secs(20) {
        talk.round().await;
        let after = |r: &TalkRoom| {
            r.received
                .iter()
                .any(|c| c[2..].parse::<usize>().is_ok_and(|n| n >= first_after))
        };
        if resumed.is_none() && talk.rooms.iter().all(after) {
            resumed = Some(killed_at.elapsed());
            println!(
                "delivery resumed in both rooms {:?} after the kill",
                killed_at.elapsed()
            );
        }
        if resumed.is_some_and(|t| killed_at.elapsed() > t + Duration::from_secs(1)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resumed = resumed.unwrap_or_else(|| {
        panic!(
            "no delivery 20 s after the kill; received {:?}\n{}\n{}",
            talk.rooms.iter().map(|r| &r.received).collect::<Vec<_>>(),
            hub1.log(),
            hub2.log()
        )
    });
    assert!(
        resumed < Duration::from_secs(15),
        "delivery resumed only after {resumed:?}"
    );
    cluster.wait_healthy(Duration::from_secs(15)).await;
    let now = cluster.masters().await;
    assert!(
        !now.contains_key(&victim),
        "the killed master still serves slots"
    );
    assert_eq!(now.len(), 3, "a replica took over: {now:?}");
    // The moved room's subscriptions are on its new master: both hubs have a member there.
    let channel = format!("{prefix}room:{{{}}}", names[0]);
    let promoted = owner(&now, cluster.keyslot(&format!("{{{}}}", names[0])).await);
    let counts: HashMap<String, i64> = cluster
        .on(
            promoted,
            redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(&channel),
        )
        .await;
    assert_eq!(
        counts[&channel], 2,
        "{channel} on the promoted master {promoted}"
    );

    // Every message sent gets its answer (an ack, with an offset when it was stored).
    let deadline = Instant::now() + Duration::from_secs(20);
    while talk.rooms.iter().any(|r| r.acked.len() < talk.sent) && Instant::now() < deadline {
        talk.drain().await;
    }
    let sent = talk.sent;
    for (
        i,
        TalkRoom {
            name,
            received,
            acked,
            ..
        },
    ) in talk.rooms.iter().enumerate()
    {
        // Live delivery: never twice.
        let unique: BTreeSet<&String> = received.iter().collect();
        assert_eq!(
            unique.len(),
            received.len(),
            "duplicates in {name}: {:?}",
            received
        );
        // Recovery: every stored (acked with offset) message, once, in offset order.
        let mut fresh = Client::connect(&hub2).await;
        fresh
            .send_json(
                &json!({"type": "join", "room": name, "since": {"epoch": epochs[i], "offset": 0}}),
            )
            .await;
        let mut replayed: Vec<(u64, String)> = Vec::new();
        loop {
            let f = fresh.recv_json().await;
            if f["type"] == "joined" {
                break;
            }
            assert_eq!(f["replayed"], true, "room {name}: {f}");
            replayed.push((
                f["offset"].as_u64().expect("offset"),
                f["content"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        let offsets: Vec<u64> = replayed.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            offsets,
            (1..=replayed.len() as u64).collect::<Vec<_>>(),
            "room {name}: offsets not contiguous: {replayed:?}"
        );
        let stored: BTreeSet<&String> = replayed.iter().map(|(_, c)| c).collect();
        assert_eq!(
            stored.len(),
            replayed.len(),
            "room {name}: stored twice: {replayed:?}"
        );
        let lost: Vec<&String> = acked
            .iter()
            .filter(|(_, offset)| **offset > 0)
            .map(|(c, _)| c)
            .filter(|c| !stored.contains(c))
            .collect();
        println!(
            "room {name} (master {}): sent {sent}, acked {}, stored {}, delivered live {}",
            if i == 0 { victim } else { other },
            acked.len(),
            replayed.len(),
            received.len()
        );
        assert!(
            lost.is_empty(),
            "room {name}: acked but not recovered: {lost:?}"
        );
    }
    assert_clean_log(&hub1);
    assert_clean_log(&hub2);
}

/// The failover test's two rooms: a writer on hub1 and a reader on hub2 in each.
#[derive(Default)]
struct Talk {
    rooms: Vec<TalkRoom>,
    /// Messages sent per room so far (`m-0`, `m-1`, …).
    sent: usize,
}

struct TalkRoom {
    name: String,
    writer: Client,
    reader: Client,
    /// The reader's chat frames (contents, in arrival order).
    received: Vec<String>,
    /// The writer's answers: content → offset (0 for an ack without one, or an error).
    acked: HashMap<String, u64>,
}

impl Talk {
    /// One message in every room, then whatever has arrived.
    async fn round(&mut self) {
        let content = format!("m-{}", self.sent);
        for room in &mut self.rooms {
            room.writer
                .send_json(&json!({"type": "message", "room": room.name, "content": content, "ref": content}))
                .await;
        }
        self.sent += 1;
        self.drain().await;
    }

    /// Reads what is waiting for every writer and reader (a poll: the test talks on meanwhile).
    async fn drain(&mut self) {
        for room in &mut self.rooms {
            room.drain().await;
        }
    }
}

impl TalkRoom {
    async fn drain(&mut self) {
        while let Some(event) = self.writer.next_event(Duration::from_millis(5)).await {
            match event {
                Event::Frame(f) if f["type"] == "ack" || f["type"] == "error" => {
                    let r = f["ref"].as_str().unwrap_or_default().to_owned();
                    self.acked.insert(r, f["offset"].as_u64().unwrap_or(0));
                }
                other => panic!("writer got {other:?}"),
            }
        }
        while let Some(event) = self.reader.next_event(Duration::from_millis(5)).await {
            match event {
                Event::Frame(f) if f["type"] == "message" => {
                    let content = f["content"].as_str().unwrap_or_default().to_owned();
                    self.received.push(content);
                }
                other => panic!("reader got {other:?}"),
            }
        }
    }
}
