//! Must-hold 1-3: delivery across hubs through Redis — exactly once, never to the sender, never to
//! other rooms; one PUBLISH per client message; hubs with one name still talk (origin = instance id).
//! "Nothing more" is shown with markers (`support::marker`): each client says one last message,
//! and a duplicate, an own copy or a leak would have to arrive before the markers.

use serde_json::Value;

use crate::support::client::{contents_from, numbered};
use crate::support::{
    Client, Hub, RedisServer, Sent, TwoHubs, assert_chat, assert_nothing_more,
    assert_nothing_more_in, assert_receives, connect_n, room,
};

#[tokio::test]
async fn room_message_reaches_every_other_member_on_both_hubs_exactly_once() {
    let hubs = TwoHubs::start().await;
    let (lobby, other) = (room("lobby"), room("other"));
    let [mut a1, mut a2, mut a3] = connect_n(&hubs.a).await;
    let [mut b1, mut b2, mut b3] = connect_n(&hubs.b).await;
    for c in [&mut a1, &mut a2, &mut b1, &mut b2] {
        c.join(&lobby).await;
    }
    for c in [&mut a3, &mut b3] {
        c.join(&other).await;
    }

    let from_a1 = numbered("a1", 5);
    let from_b1 = numbered("b1", 5);
    for (x, y) in from_a1.iter().zip(&from_b1) {
        a1.say(&lobby, x).await;
        b1.say(&lobby, y).await;
    }

    let (a1_id, b1_id) = (a1.id.clone(), b1.id.clone());
    let sent_a1 = Sent {
        from: &a1_id,
        hub: "hub-a",
        contents: &from_a1,
    };
    let sent_b1 = Sent {
        from: &b1_id,
        hub: "hub-b",
        contents: &from_b1,
    };
    assert_receives(&mut a2, "message", Some(&lobby), &[sent_a1, sent_b1]).await;
    assert_receives(&mut b2, "message", Some(&lobby), &[sent_a1, sent_b1]).await;
    // Senders get the other's messages only: no copy of their own.
    assert_receives(&mut a1, "message", Some(&lobby), &[sent_b1]).await;
    assert_receives(&mut b1, "message", Some(&lobby), &[sent_a1]).await;

    // No duplicates anywhere, no own copies, nothing for the other room on either hub.
    assert_nothing_more(&mut [&mut a1, &mut a2, &mut a3, &mut b1, &mut b2, &mut b3]).await;
}

#[tokio::test]
async fn broadcast_reaches_every_other_client_on_both_hubs_exactly_once() {
    let hubs = TwoHubs::start().await;
    let (lobby, other) = (room("lobby"), room("other"));
    let [mut a1, mut a2, mut a3] = connect_n(&hubs.a).await;
    let [mut b1, mut b2, mut b3] = connect_n(&hubs.b).await;
    // Rooms must not matter for a broadcast; a3 even leaves the default room.
    a2.join(&lobby).await;
    b2.join(&other).await;
    a3.leave("general").await;

    let from_a1 = numbered("bc-a1", 3);
    let from_b3 = numbered("bc-b3", 2);
    for c in &from_a1 {
        a1.broadcast(c).await;
    }
    for c in &from_b3 {
        b3.broadcast(c).await;
    }

    let (a1_id, b3_id) = (a1.id.clone(), b3.id.clone());
    let sent_a1 = Sent {
        from: &a1_id,
        hub: "hub-a",
        contents: &from_a1,
    };
    let sent_b3 = Sent {
        from: &b3_id,
        hub: "hub-b",
        contents: &from_b3,
    };
    for c in [&mut a2, &mut a3, &mut b1, &mut b2] {
        assert_receives(c, "broadcast", None, &[sent_a1, sent_b3]).await;
    }
    assert_receives(&mut a1, "broadcast", None, &[sent_b3]).await;
    assert_receives(&mut b3, "broadcast", None, &[sent_a1]).await;

    assert_nothing_more(&mut [&mut a1, &mut a2, &mut a3, &mut b1, &mut b2, &mut b3]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hubs_deliver_room_messages_and_broadcasts_exactly_once() {
    let redis = RedisServer::start().await;
    let mut hubs = Vec::new();
    for name in ["hub-a", "hub-b", "hub-c"] {
        hubs.push(Hub::with_redis(name, &redis).await);
    }
    let lobby = room("lobby");
    let other = room("other");

    // Per hub: two lobby members and one outsider in another room.
    let mut members = Vec::new();
    let mut outsiders = Vec::new();
    for hub in &hubs {
        for _ in 0..2 {
            let mut c = Client::connect(hub).await;
            c.join(&lobby).await;
            members.push((hub.name.clone(), c));
        }
        let mut c = Client::connect(hub).await;
        c.join(&other).await;
        outsiders.push((hub.name.clone(), c));
    }

    let mut sent = Vec::new();
    for (i, (hub, c)) in members.iter_mut().enumerate() {
        let contents = numbered(&format!("m{i}"), 2);
        for content in &contents {
            c.say(&lobby, content).await;
        }
        sent.push((c.id.clone(), hub.clone(), contents));
    }
    // The outsider of hub-c broadcasts: every other client, members and outsiders, gets it once.
    let bc_contents = numbered("bc-c", 1);
    let (bc_hub, broadcaster) = &mut outsiders[2];
    broadcaster.broadcast(&bc_contents[0]).await;
    let (bc_id, bc_hub) = (broadcaster.id.clone(), bc_hub.clone());
    let bc_sent = Sent {
        from: &bc_id,
        hub: &bc_hub,
        contents: &bc_contents,
    };

    for (me, (_, c)) in members.iter_mut().enumerate() {
        // The lobby messages of the five other members (each once, in order), then the broadcast
        // — interleaved arbitrarily, so read them all and split by type.
        let frames = c.recv_chat(5 * 2 + 1).await;
        let (messages, broadcasts): (Vec<Value>, Vec<Value>) =
            frames.into_iter().partition(|f| f["type"] == "message");
        let others: Vec<Sent<'_>> = sent
            .iter()
            .enumerate()
            .filter(|(who, _)| *who != me)
            .map(|(_, (from, hub, contents))| Sent {
                from,
                hub,
                contents,
            })
            .collect();
        assert_chat(&c.id, &messages, "message", Some(&lobby), &others);
        assert_chat(&c.id, &broadcasts, "broadcast", None, &[bc_sent]);
    }
    for (_, c) in &mut outsiders[..2] {
        assert_receives(c, "broadcast", None, &[bc_sent]).await;
    }
    let mut all: Vec<&mut Client> = members
        .iter_mut()
        .chain(outsiders.iter_mut())
        .map(|(_, c)| c)
        .collect();
    assert_nothing_more(&mut all).await;
}

#[tokio::test]
async fn one_publish_per_client_message_and_no_republish() {
    let hubs = TwoHubs::start().await;
    let lobby = room("lobby");
    let [mut a1, mut a2] = connect_n(&hubs.a).await;
    let [mut b1] = connect_n(&hubs.b).await;
    for c in [&mut a1, &mut a2, &mut b1] {
        c.join(&lobby).await;
    }

    let before = hubs.redis.settled_publish_count().await;
    let from_a1 = numbered("a1", 10);
    let from_b1 = numbered("b1", 10);
    let bc_a1 = numbered("bc-a1", 3);
    for (x, y) in from_a1.iter().zip(&from_b1) {
        a1.say(&lobby, x).await;
        b1.say(&lobby, y).await;
    }
    for c in &bc_a1 {
        a1.broadcast(c).await;
    }
    // Everything arrives everywhere, each once and in order: a2 gets both senders' messages and
    // a1's broadcasts, b1 a1's, a1 b1's.
    let (a1_id, b1_id) = (a1.id.clone(), b1.id.clone());
    let messages_a1 = Sent {
        from: &a1_id,
        hub: "hub-a",
        contents: &from_a1,
    };
    let messages_b1 = Sent {
        from: &b1_id,
        hub: "hub-b",
        contents: &from_b1,
    };
    let broadcasts_a1 = Sent {
        from: &a1_id,
        hub: "hub-a",
        contents: &bc_a1,
    };
    for (client, messages) in [
        (&mut a2, &[messages_a1, messages_b1][..]),
        (&mut b1, &[messages_a1][..]),
    ] {
        let n = messages.iter().map(|s| s.contents.len()).sum::<usize>() + bc_a1.len();
        let frames = client.recv_chat(n).await;
        let (chat, broadcasts): (Vec<Value>, Vec<Value>) =
            frames.into_iter().partition(|f| f["type"] == "message");
        assert_chat(&client.id, &chat, "message", Some(&lobby), messages);
        assert_chat(&client.id, &broadcasts, "broadcast", None, &[broadcasts_a1]);
    }
    assert_receives(&mut a1, "message", Some(&lobby), &[messages_b1]).await;

    // One marker per client in the lobby (no join: no presence diff to publish), and nothing else
    // anywhere. A hub re-publishing what it received (an echo storm) has done so by the time the
    // markers are in: it re-publishes on receipt, before its clients read what it received and so
    // before they send their markers.
    assert_nothing_more_in(&lobby, &mut [&mut a1, &mut a2, &mut b1]).await;
    let markers = 3;
    let expected = (from_a1.len() + from_b1.len() + bc_a1.len() + markers) as u64;
    assert_eq!(
        hubs.redis.publish_count().await - before,
        expected,
        "PUBLISH calls for {expected} client messages (markers included)"
    );
}

#[tokio::test]
async fn two_hubs_with_the_same_name_still_exchange_messages() {
    let hubs = TwoHubs::start_named(["twin", "twin"], |b| b).await;
    let lobby = room("lobby");
    let [mut a1] = connect_n(&hubs.a).await;
    let [mut b1] = connect_n(&hubs.b).await;
    assert_eq!(a1.welcome["hub"], "twin");
    assert_eq!(b1.welcome["hub"], "twin");
    let (ia, ib) = (&a1.welcome["instance_id"], &b1.welcome["instance_id"]);
    assert!(
        ia.is_string() && ib.is_string(),
        "welcome without instance_id"
    );
    assert_ne!(ia, ib, "two processes must have two instance ids");
    a1.join(&lobby).await;
    b1.join(&lobby).await;

    let from_a1 = numbered("a1", 3);
    let from_b1 = numbered("b1", 3);
    for (x, y) in from_a1.iter().zip(&from_b1) {
        a1.say(&lobby, x).await;
        b1.say(&lobby, y).await;
    }
    a1.broadcast("bc-a1").await;
    let (a1_id, b1_id) = (a1.id.clone(), b1.id.clone());
    let frames = b1.recv_chat(4).await;
    assert_eq!(
        contents_from(&frames, &a1_id),
        [from_a1.clone(), vec!["bc-a1".into()]].concat()
    );
    assert_receives(
        &mut a1,
        "message",
        Some(&lobby),
        &[Sent {
            from: &b1_id,
            hub: "twin",
            contents: &from_b1,
        }],
    )
    .await;
    assert_nothing_more(&mut [&mut a1, &mut b1]).await;
}
