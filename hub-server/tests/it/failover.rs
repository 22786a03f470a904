//! Issue 25.5: on a Redis Cluster a failed master pauses only the rooms on its slots. Three rooms,
//! one per master, each with a member on two hubs who both talk (a message every 100 ms); one
//! master is SIGKILLed mid-conversation. The rooms on the two live masters keep delivering across
//! the hubs during the failover — every message arrives, and the longest silence at a receiver
//! stays under a second — while the dead master's room pauses until its replica is promoted, then
//! resumes; a `since` recovery of every room returns each acknowledged message once, in offset
//! order.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;

use crate::support::cluster::RedisCluster;
use crate::support::{Client, Event, Hub, room};

/// How often each member says something.
const EVERY: Duration = Duration::from_millis(100);
/// The longest a receiver in a room on a live master may go without a message during the failover.
const MAX_LIVE_GAP: Duration = Duration::from_secs(1);

/// A hub on the cluster; the timeouts of `cluster::cluster_hub`.
async fn hub_on(name: &str, cluster: &RedisCluster, prefix: &str) -> Hub {
    Hub::builder(name)
        .env("REDIS_CLUSTER_NODES", &cluster.nodes_env())
        .env("HUB_REDIS_PREFIX", prefix)
        .env("HUB_REDIS_TIMEOUT", "1s")
        .env("HUB_RECONNECT_MAX", "1s")
        // Room for every message of the run: the recovery at the end replays them all.
        .env("HUB_HISTORY_SIZE", "1000")
        .start()
        .await
}

/// The master (port) whose slot ranges hold `slot`.
fn master_of(masters: &HashMap<u16, Vec<(u16, u16)>>, slot: u16) -> u16 {
    masters
        .iter()
        .find_map(|(port, ranges)| {
            ranges
                .iter()
                .any(|&(from, to)| (from..=to).contains(&slot))
                .then_some(*port)
        })
        .expect("every slot has a master")
}

/// One fresh room name per master, by the slot of its `{room}` hash tag.
async fn a_room_per_master(
    cluster: &RedisCluster,
    masters: &HashMap<u16, Vec<(u16, u16)>>,
) -> HashMap<u16, String> {
    let mut found = HashMap::new();
    for i in 0..1000 {
        let name = room(&format!("fo{i}"));
        let port = master_of(masters, cluster.keyslot(&format!("{{{name}}}")).await);
        found.entry(port).or_insert(name);
        if found.len() == masters.len() {
            return found;
        }
    }
    panic!("no room found for every master");
}

/// A prefix that puts the broadcast and control channels on `port`: a master that stays up, so
/// that only rooms are on the one that dies.
async fn prefix_for(
    cluster: &RedisCluster,
    masters: &HashMap<u16, Vec<(u16, u16)>>,
    port: u16,
) -> String {
    for i in 0..1000 {
        let prefix = format!("fo{i}:");
        let mut on = Vec::new();
        for channel in ["broadcast", "control"] {
            let slot = cluster.keyslot(&format!("{prefix}{channel}")).await;
            on.push(master_of(masters, slot));
        }
        if on.iter().all(|p| *p == port) {
            return prefix;
        }
    }
    panic!("no prefix puts broadcast and control on {port}");
}

/// Every node's port, masters and replicas.
fn node_ports(cluster: &RedisCluster) -> Vec<u16> {
    cluster
        .nodes_env()
        .split(',')
        .filter_map(|url| url.rsplit(':').next()?.parse().ok())
        .collect()
}

/// What one member saw: what it sent (content, when), the answers to it, and what it received.
#[derive(Default)]
struct Log {
    sent: Vec<(String, Instant)>,
    /// `ref` → offset (0: acknowledged without one, or refused).
    answered: HashMap<String, u64>,
    refused: Vec<String>,
    /// (content, arrival), in arrival order.
    received: Vec<(String, Instant)>,
}

impl Log {
    /// Arrivals of messages sent by `tag`, in arrival order.
    fn from(&self, tag: &str) -> Vec<&(String, Instant)> {
        let prefix = format!("{tag}-");
        self.received
            .iter()
            .filter(|(c, _)| c.starts_with(&prefix))
            .collect()
    }
}

/// A member that says `<tag>-<n>` every [`EVERY`] and reads everything meanwhile. When `stop`
/// turns true it says `<tag>-end` and reads on until it has the answer to it and the peer's own
/// end marker (per-room order: nothing of the peer's can come after it), 40 s at most.
async fn talk(
    mut client: Client,
    room: String,
    tag: String,
    peer: String,
    mut stop: watch::Receiver<bool>,
) -> (Client, Log) {
    let mut log = Log::default();
    let mut next = tokio::time::Instant::now();
    let mut n = 0usize;
    let mut ending: Option<Instant> = None;
    let peer_end = format!("{peer}-end");
    let own_end = format!("{tag}-end");
    loop {
        if ending.is_none() && *stop.borrow_and_update() {
            say(&mut client, &room, &own_end).await;
            log.sent.push((own_end.clone(), Instant::now()));
            ending = Some(Instant::now());
        }
        if let Some(since) = ending {
            let done = log.answered.contains_key(&own_end)
                && log.received.iter().any(|(c, _)| *c == peer_end);
            if done {
                return (client, log);
            }
            assert!(
                since.elapsed() < Duration::from_secs(40),
                "{tag} in {room}: no end 40 s after the stop; answered {}, received {}",
                log.answered.len(),
                log.received.len()
            );
        } else if tokio::time::Instant::now() >= next {
            let content = format!("{tag}-{n}");
            say(&mut client, &room, &content).await;
            log.sent.push((content, Instant::now()));
            n += 1;
            next += EVERY;
        }
        let within = match ending {
            Some(_) => Duration::from_millis(200),
            None => next.saturating_duration_since(tokio::time::Instant::now()),
        };
        read(&mut client, &mut log, within).await;
    }
}

async fn say(client: &mut Client, room: &str, content: &str) {
    client
        .send_json(&json!({"type": "message", "room": room, "content": content, "ref": content}))
        .await;
}

/// Reads what arrives within `within` into `log`.
async fn read(client: &mut Client, log: &mut Log, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(event) = client.next_event(left).await else {
            return;
        };
        let Event::Frame(f) = event else {
            panic!("client {}: {event:?}", client.id);
        };
        let reference = f["ref"].as_str().unwrap_or_default().to_owned();
        match f["type"].as_str() {
            Some("message") => {
                let content = f["content"].as_str().unwrap_or_default().to_owned();
                log.received.push((content, Instant::now()));
            }
            Some("ack") => {
                log.answered
                    .insert(reference, f["offset"].as_u64().unwrap_or(0));
            }
            Some("error") => {
                log.answered.insert(reference.clone(), 0);
                log.refused.push(reference);
            }
            _ => panic!("client {}: unexpected {f}", client.id),
        }
        if tokio::time::Instant::now() >= deadline {
            return;
        }
    }
}

/// The longest silence at a receiver from `from` on: `arrivals` (sorted) are the messages that
/// reached it; the first gap runs from `from` itself. Until `until`.
fn longest_gap(arrivals: &[Instant], from: Instant, until: Instant) -> Duration {
    let mut last = from;
    let mut longest = Duration::ZERO;
    for &at in arrivals.iter().filter(|t| **t > from && **t <= until) {
        longest = longest.max(at - last);
        last = at;
    }
    longest.max(until.saturating_duration_since(last))
}

/// Joins `name` with `since` offset 0: every stored message, as (offset, content).
async fn recover(hub: &Hub, name: &str, epoch: &str) -> Vec<(u64, String)> {
    let mut reader = Client::connect(hub).await;
    reader
        .send_json(&json!({"type": "join", "room": name, "since": {"epoch": epoch, "offset": 0}}))
        .await;
    let mut replayed = Vec::new();
    loop {
        let f = reader.recv_json().await;
        if f["type"] == "joined" {
            assert_eq!(f["recovered"], true, "room {name}: {f}");
            return replayed;
        }
        assert_eq!(f["replayed"], true, "room {name}: {f}");
        replayed.push((
            f["offset"]
                .as_u64()
                .expect("a replayed message has an offset"),
            f["content"].as_str().unwrap_or_default().to_owned(),
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_pauses_only_its_rooms_the_others_deliver_throughout() {
    let mut cluster = RedisCluster::start().await;
    let masters = cluster.masters().await;
    assert_eq!(masters.len(), 3, "three masters: {masters:?}");
    // With Redis's default, `cluster-require-full-coverage yes`, every master refuses writes
    // (CLUSTERDOWN) from the moment the dead one is marked failed until its replica is elected:
    // no hub can deliver anything then. A deployment that wants the other masters' rooms to go
    // on says no, as the README says.
    for port in node_ports(&cluster) {
        let mut set = redis::cmd("CONFIG");
        set.arg("SET")
            .arg("cluster-require-full-coverage")
            .arg("no");
        let () = cluster.on(port, &set).await;
    }
    let mut ports: Vec<u16> = masters.keys().copied().collect();
    ports.sort_unstable();
    let victim = ports[0];
    let prefix = prefix_for(&cluster, &masters, ports[2]).await;
    let rooms = a_room_per_master(&cluster, &masters).await;
    let hubs = [
        hub_on("hub1", &cluster, &prefix).await,
        hub_on("hub2", &cluster, &prefix).await,
    ];

    // Per room (by master): a member on each hub; `a` on hub1, `b` on hub2.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut talkers = Vec::new();
    let mut epochs = HashMap::new();
    for port in &ports {
        let name = rooms[port].clone();
        let mut members = Vec::new();
        for hub in &hubs {
            let mut client = Client::connect(hub).await;
            let joined = client.join(&name).await;
            let epoch = joined["epoch"].as_str().expect("an epoch").to_owned();
            assert_eq!(
                epochs.entry(name.clone()).or_insert_with(|| epoch.clone()),
                &epoch
            );
            members.push(client);
        }
        let b = members.pop().expect("b");
        let a = members.pop().expect("a");
        for (client, tag, peer) in [(a, "a", "b"), (b, "b", "a")] {
            let task = tokio::spawn(talk(
                client,
                name.clone(),
                format!("{port}{tag}"),
                format!("{port}{peer}"),
                stop_rx.clone(),
            ));
            talkers.push((*port, tag, task));
        }
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed = Instant::now();
    cluster.kill(victim);
    println!(
        "killed master {victim} (room {}); live masters {:?}",
        rooms[&victim],
        &ports[1..]
    );
    // Until the replica serves the dead master's slots, and a few seconds of talk after it.
    cluster.wait_healthy(Duration::from_secs(20)).await;
    let promoted = killed.elapsed();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop_tx.send_replace(true);
    let stopped = Instant::now();

    let mut logs: HashMap<(u16, &str), Log> = HashMap::new();
    let mut clients = Vec::new();
    for (port, tag, task) in talkers {
        let (client, log) = task.await.unwrap_or_else(|e| {
            panic!(
                "talker {port}{tag}: {e}\nhub1:\n{}\nhub2:\n{}",
                hubs[0].log(),
                hubs[1].log()
            )
        });
        logs.insert((port, tag), log);
        clients.push(client);
    }
    println!("cluster healthy again {promoted:?} after the kill");

    // Figures first (all of them, also when an assertion below fails), then the checks.
    let mut resumed_dead = Duration::ZERO;
    let mut checks = Vec::new();
    for port in &ports {
        let name = &rooms[port];
        for (sender, receiver) in [("a", "b"), ("b", "a")] {
            let sent = &logs[&(*port, sender)].sent;
            let got = logs[&(*port, receiver)].from(&format!("{port}{sender}"));
            let arrivals: Vec<Instant> = got.iter().map(|(_, t)| *t).collect();
            let direction = format!("room {name}: {sender} → {receiver}");
            if *port == victim {
                // The first message sent after the kill that reached the other hub.
                let first = sent
                    .iter()
                    .filter(|(_, t)| *t > killed)
                    .filter_map(|(c, _)| got.iter().find(|(g, _)| g == c))
                    .map(|(_, t)| *t - killed)
                    .min()
                    .unwrap_or_else(|| panic!("{direction} (dead master) never resumed"));
                println!("dead master {port}, {direction}: resumed {first:?} after the kill");
                resumed_dead = resumed_dead.max(first);
            } else {
                let gap = longest_gap(&arrivals, killed, stopped);
                let after = arrivals.iter().filter(|t| **t > killed).count();
                println!(
                    "live master {port}, {direction}: {after} messages after the kill, longest gap {gap:?}"
                );
                checks.push((direction, sent, got, gap));
            }
        }
    }
    for (direction, sent, got, gap) in checks {
        // A room on a live master: everything said, once, in order, without a long silence.
        let contents: Vec<&String> = got.iter().map(|(c, _)| c).collect();
        let said: Vec<&String> = sent.iter().map(|(c, _)| c).collect();
        assert_eq!(contents, said, "{direction}: lost, repeated or reordered");
        assert!(
            gap < MAX_LIVE_GAP,
            "{direction}, on a live master, went {gap:?} without a message during the failover"
        );
    }
    for (port, tag) in [(victim, "a"), (victim, "b")] {
        let got = logs[&(port, tag)].from(&format!("{port}{}", if tag == "a" { "b" } else { "a" }));
        let unique: BTreeSet<&String> = got.iter().map(|(c, _)| c).collect();
        assert_eq!(
            unique.len(),
            got.len(),
            "dead master's room: delivered twice"
        );
    }
    // It did pause: a replica cannot be promoted before the node timeout (2 s) has passed.
    assert!(
        resumed_dead > Duration::from_secs(1),
        "the dead master's room resumed {resumed_dead:?} after the kill: was its master killed?"
    );
    assert!(
        resumed_dead < Duration::from_secs(15),
        "the dead master's room resumed only {resumed_dead:?} after the kill"
    );

    // Every message got its answer; a `since` recovery has every stored one, once, in order.
    for port in &ports {
        let name = &rooms[port];
        let replayed = recover(&hubs[1], name, &epochs[name]).await;
        let offsets: Vec<u64> = replayed.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            offsets,
            (1..=replayed.len() as u64).collect::<Vec<_>>(),
            "room {name}: offsets not contiguous"
        );
        let stored: BTreeSet<&String> = replayed.iter().map(|(_, c)| c).collect();
        assert_eq!(stored.len(), replayed.len(), "room {name}: stored twice");
        for tag in ["a", "b"] {
            let log = &logs[&(*port, tag)];
            for (content, _) in &log.sent {
                assert!(
                    log.answered.contains_key(content),
                    "room {name}: {content} never answered"
                );
            }
            let lost: Vec<&String> = log
                .answered
                .iter()
                .filter(|(_, offset)| **offset > 0)
                .map(|(c, _)| c)
                .filter(|c| !stored.contains(c))
                .collect();
            assert!(
                lost.is_empty(),
                "room {name}: acked, not recovered: {lost:?}"
            );
            // Per sender, the history keeps the order in which it said them.
            let prefix = format!("{port}{tag}-");
            let order: Vec<&String> = replayed
                .iter()
                .map(|(_, c)| c)
                .filter(|c| c.starts_with(&prefix))
                .collect();
            let said: Vec<&String> = log
                .sent
                .iter()
                .map(|(c, _)| c)
                .filter(|c| order.contains(c))
                .collect();
            assert_eq!(order, said, "room {name}: {tag}'s messages out of order");
            if *port != victim {
                assert!(
                    log.refused.is_empty(),
                    "room {name} on a live master: refused {:?}",
                    log.refused
                );
                let unstored = log.answered.values().filter(|o| **o == 0).count();
                assert_eq!(
                    unstored, 0,
                    "room {name} on a live master: acks without offset"
                );
            }
        }
        println!(
            "room {name} (master {port}{}): stored {}",
            if *port == victim { ", killed" } else { "" },
            replayed.len()
        );
    }
    for hub in &hubs {
        let log = hub.log();
        assert!(
            !log.contains("panicked"),
            "hub {} panicked:\n{log}",
            hub.name
        );
    }
}
