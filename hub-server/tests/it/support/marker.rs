//! The marker proof that nothing unwanted arrived (a duplicate, an echo, a leak to another room, a
//! close). Listening for a while ("nothing within 500 ms") passes wrongly on a loaded machine;
//! instead a test sends one last message after whatever must not arrive, along the path it would
//! take. Messages of one sender keep their order on every hop, so once the marker is in, anything
//! unwanted that was sent or caused before it is in too, and must not be among what came first.

use serde_json::Value;

use super::RECV_TIMEOUT;
use super::client::{Client, Event};

/// A marker text no test sends otherwise: `marker-<label>-<8 hex>`.
pub fn marker(label: &str) -> String {
    format!(
        "marker-{label}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

impl Client {
    /// The next frames must be exactly the chat frames carrying `markers` (each once, in any
    /// order): nothing before them, nothing between them.
    pub async fn expect_markers(&mut self, markers: &[String]) {
        let mut missing: Vec<&String> = markers.iter().collect();
        let mut seen: Vec<Value> = Vec::new();
        while !missing.is_empty() {
            let frame = match self.next_event(RECV_TIMEOUT).await {
                Some(Event::Frame(frame)) => frame,
                other => panic!(
                    "client {}: waiting for markers {missing:?}, got {other:?}; markers so far: {seen:?}",
                    self.id
                ),
            };
            let is_chat = frame["type"] == "message" || frame["type"] == "broadcast";
            let at = missing
                .iter()
                .position(|m| is_chat && frame["content"] == m.as_str());
            match at {
                Some(at) => {
                    missing.swap_remove(at);
                    seen.push(frame);
                }
                None => panic!(
                    "client {}: {frame} arrived before the markers {missing:?} (markers so far: \
                     {seen:?}): a duplicate, an echo, a leak or a frame that should not exist",
                    self.id
                ),
            }
        }
    }

    /// [`Client::expect_markers`] for one marker.
    pub async fn expect_marker(&mut self, marker: &str) {
        self.expect_markers(&[marker.to_owned()]).await;
    }
}

/// Nothing more for any of `clients`: they all join a fresh marker room and each says a marker
/// there; each must then receive exactly the others' markers before anything else.
///
/// Room messages, not broadcasts: with history in Redis a room message goes round through Redis
/// even to members on its own hub, as the chat under test did, whereas a broadcast is delivered
/// at once and could overtake what is still on its way. For clients of several hubs, every hub
/// whose traffic could bring something unwanted needs a client in the list, so that its marker
/// follows that traffic through Redis. (Joining makes presence diffs, set aside by the client.)
pub async fn assert_nothing_more(clients: &mut [&mut Client]) {
    let room = super::room("markers");
    for client in clients.iter_mut() {
        client.join(&room).await;
    }
    assert_nothing_more_in(&room, clients).await;
}

/// [`assert_nothing_more`] in a room every one of `clients` is a member of already.
pub async fn assert_nothing_more_in(room: &str, clients: &mut [&mut Client]) {
    let markers = markers(clients.len());
    for (client, m) in clients.iter_mut().zip(&markers) {
        client.say(room, m).await;
    }
    for (i, client) in clients.iter_mut().enumerate() {
        // No echo of its own.
        let mut others = markers.clone();
        others.remove(i);
        client.expect_markers(&others).await;
    }
}

/// Nothing more for `listeners`, shown by `heralds` (clients allowed to broadcast, one on each hub
/// whose traffic matters): each herald broadcasts a marker, and every listener must get all of
/// them before anything else. For what should have been refused where it was sent (a forbidden
/// frame): had it gone out, its copies would be delivered at once on that hub, as the herald's
/// broadcast is, or reach the other hubs through Redis ahead of the herald's marker.
pub async fn assert_nothing_more_heralded(
    heralds: &mut [&mut Client],
    listeners: &mut [&mut Client],
) {
    let markers = markers(heralds.len());
    for (herald, m) in heralds.iter_mut().zip(&markers) {
        herald.broadcast(m).await;
    }
    for listener in listeners.iter_mut() {
        listener.expect_markers(&markers).await;
    }
}

fn markers(n: usize) -> Vec<String> {
    (0..n).map(|i| marker(&format!("quiet{i}"))).collect()
}
