//! The SDK side of a conformance run: Rust SDK clients driven by name, and a record of everything
//! they told the application (messages, recoveries, joins, states, renewed tokens, publish
//! outcomes). Each client's events and each subscription are read by a task of their own, as an
//! application would; the runner waits on the record.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use hub_client::{
    ClientEvent, ClientOptions, HubClient, Position, Recovery, Room, RoomEvent, SubscribeOptions,
    Token,
};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::scenario::TokenSpec;
use crate::support::jwt;

#[derive(Debug, Clone)]
pub struct StateRec {
    pub state: String,
    pub at: Instant,
    pub code: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct MsgRec {
    pub id: String,
    pub offset: Option<u64>,
    pub epoch: Option<String>,
    pub content: String,
    pub replayed: bool,
}

#[derive(Debug, Clone)]
pub struct PubRec {
    pub room: String,
    pub content: String,
    pub settled: bool,
    pub ok: bool,
    pub id: Option<String>,
    pub offset: Option<u64>,
    pub code: Option<String>,
    pub maybe_stored: Option<bool>,
}

#[derive(Debug, Default)]
pub struct RoomRec {
    pub messages: Vec<MsgRec>,
    pub contents: HashSet<String>,
    pub recoveries: Vec<Recovery>,
    pub joined: usize,
    pub errors: Vec<String>,
    /// Where the room's stream stood when its client closed (what an app would keep).
    pub position: Option<Position>,
}

#[derive(Debug, Default)]
pub struct ClientRec {
    pub states: Vec<StateRec>,
    pub errors: Vec<String>,
    pub tokens: usize,
    pub publishes: Vec<PubRec>,
    /// Publish steps still handing out publishes.
    pub running: usize,
}

/// A record shared with the tasks that fill it, and a signal each time it changes.
pub struct Shared<T> {
    data: Mutex<T>,
    changed: Notify,
}

impl<T> Shared<T> {
    fn new(data: T) -> Arc<Self> {
        Arc::new(Shared {
            data: Mutex::new(data),
            changed: Notify::new(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut T)) {
        f(&mut self.lock());
        self.changed.notify_waiters();
    }

    /// Waits until `done` holds (checked after every change), at most until `deadline`.
    pub async fn wait(&self, deadline: Instant, mut done: impl FnMut(&T) -> bool) -> bool {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(&self.lock()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done(&self.lock());
            }
        }
    }
}

struct AgentRoom {
    room: Room,
    rec: Arc<Shared<RoomRec>>,
    reader: JoinHandle<()>,
}

pub struct AgentClient {
    pub client: HubClient,
    pub rec: Arc<Shared<ClientRec>>,
    /// Records the client's events; done once the client closed and said so.
    listener: Option<JoinHandle<()>>,
    failing: Arc<AtomicBool>,
    rooms: HashMap<String, AgentRoom>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Default)]
pub struct Agent {
    clients: HashMap<String, AgentClient>,
}

/// The scenario's option names (the JS SDK's, in ms or counts) on the Rust SDK's options.
pub fn options(from: &BTreeMap<String, Value>) -> Result<ClientOptions, String> {
    let mut o = ClientOptions::default();
    for (name, value) in from {
        let n = value
            .as_f64()
            .ok_or_else(|| format!("option {name}: not a number"))?;
        let ms = Duration::from_secs_f64(n / 1000.0);
        let count = n as usize;
        match name.as_str() {
            "reconnectDelayMin" => o.reconnect_delay_min = ms,
            "reconnectDelayMax" => o.reconnect_delay_max = ms,
            "connectTimeout" => o.connect_timeout = ms,
            "pingInterval" => o.ping_interval = ms,
            "pongTimeout" => o.pong_timeout = ms,
            "publishTimeout" => o.publish_timeout = ms,
            "maxQueued" => o.max_queued = count,
            "publishWindow" => o.publish_window = count,
            "resendAfter" => o.resend_after = ms,
            "maxMessageBytes" => o.max_message_bytes = count,
            "sendRate" => o.send_rate = n,
            "sendBurst" => o.send_burst = n as u32,
            "maxHeld" => o.max_held = count,
            "dedupeWindow" => o.dedupe_window = count,
            "gapWait" => o.gap_wait = ms,
            other => return Err(format!("unknown client option {other:?}")),
        }
    }
    Ok(o)
}

impl Agent {
    fn get(&self, name: &str) -> Result<&AgentClient, String> {
        self.clients
            .get(name)
            .ok_or_else(|| format!("no client named {name}"))
    }

    pub fn client(&self, name: &str) -> Result<&AgentClient, String> {
        self.get(name)
    }

    pub fn room_rec(&self, name: &str, room: &str) -> Result<Arc<Shared<RoomRec>>, String> {
        Ok(self.room(name, room)?.rec.clone())
    }

    fn room(&self, name: &str, room: &str) -> Result<&AgentRoom, String> {
        self.get(name)?
            .rooms
            .get(room)
            .ok_or_else(|| format!("client {name} has no room {room}"))
    }

    /// Creates client `name` of the hub at `url` and waits for its welcome.
    pub async fn create(
        &mut self,
        name: &str,
        url: &str,
        token: Option<(TokenSpec, String)>,
        mut opts: ClientOptions,
        deadline: Instant,
    ) -> Result<(), String> {
        if self.clients.contains_key(name) {
            return Err(format!("client {name} exists"));
        }
        let failing = Arc::new(AtomicBool::new(false));
        if let Some((spec, secret)) = token {
            let failing = failing.clone();
            opts.token = Some(Token::provider(move || {
                let (spec, secret, failing) = (spec.clone(), secret.clone(), failing.clone());
                async move {
                    if failing.load(Ordering::SeqCst) {
                        return Err("the token service is down (test)".into());
                    }
                    let ttl = spec.ttl_ms.unwrap_or(60_000);
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(jwt::sign(
                        &secret,
                        &spec.sub,
                        spec.name.as_deref(),
                        ttl,
                    ))
                }
            }));
        }
        let client = HubClient::new(url, opts).map_err(|e| e.to_string())?;
        let rec = Shared::new(ClientRec::default());
        // Subscribed before the client starts: every state change is seen.
        let mut events = client.events();
        let r = rec.clone();
        let listener = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                r.update(|c| match event {
                    ClientEvent::State(s) => c.states.push(StateRec {
                        state: s.state.as_str().to_owned(),
                        at: Instant::now(),
                        code: s.code,
                    }),
                    ClientEvent::Token(_) => c.tokens += 1,
                    ClientEvent::Error(e) => c.errors.push(e.to_string()),
                    ClientEvent::Broadcast(_) | ClientEvent::Message(_) => {}
                });
            }
        });
        tokio::time::timeout_at(deadline, client.connected())
            .await
            .map_err(|_| format!("{name} did not connect in time"))?
            .map_err(|e| format!("{name} connect: {e}"))?;
        self.clients.insert(
            name.to_owned(),
            AgentClient {
                client,
                rec,
                listener: Some(listener),
                failing,
                rooms: HashMap::new(),
                tasks: Vec::new(),
            },
        );
        Ok(())
    }

    /// Subscribes and waits until the room is joined.
    pub async fn subscribe(
        &mut self,
        name: &str,
        room: &str,
        history: Option<u32>,
        since: Option<Position>,
        again: bool,
        deadline: Instant,
    ) -> Result<(), String> {
        let c = self
            .clients
            .get_mut(name)
            .ok_or_else(|| format!("no client named {name}"))?;
        if again {
            let old = c
                .rooms
                .get(room)
                .ok_or_else(|| format!("{name} is not in {room} to subscribe again"))?;
            // Polled once: the leave is handed to the client now, its answer not waited for.
            let _ = old.room.unsubscribe().now_or_never();
        }
        let options = SubscribeOptions { history, since };
        let mut sub = c
            .client
            .subscribe(room, options)
            .await
            .map_err(|e| format!("{name} subscribe {room}: {e}"))?;
        let handle = sub.room();
        let rec = Shared::new(RoomRec::default());
        let r = rec.clone();
        let reader = tokio::spawn(async move {
            while let Some(event) = sub.next().await {
                r.update(|rr| match event {
                    RoomEvent::Message(m) => {
                        rr.contents.insert(m.content.clone());
                        rr.messages.push(MsgRec {
                            id: m.id,
                            offset: m.offset,
                            epoch: m.epoch,
                            content: m.content,
                            replayed: m.replayed,
                        });
                    }
                    RoomEvent::Recovery(e) => rr.recoveries.push(e),
                    RoomEvent::Joined(_) => rr.joined += 1,
                    RoomEvent::Error(e) => rr.errors.push(e.to_string()),
                    RoomEvent::Presence(_) => {}
                });
            }
        });
        let ok = rec.wait(deadline, |rr| rr.joined > 0).await;
        c.rooms.insert(
            room.to_owned(),
            AgentRoom {
                room: handle,
                rec,
                reader,
            },
        );
        if ok {
            Ok(())
        } else {
            Err(format!("{name} did not join {room} in time"))
        }
    }

    /// Publishes `contents` one after another, `interval` apart, in the background; each
    /// outcome is recorded.
    pub fn publish(
        &mut self,
        name: &str,
        room: &str,
        contents: Vec<String>,
        interval: Duration,
    ) -> Result<(), String> {
        let handle = self.room(name, room)?.room.clone();
        let c = self
            .clients
            .get_mut(name)
            .ok_or_else(|| format!("no client named {name}"))?;
        let rec = c.rec.clone();
        rec.update(|r| r.running += 1);
        let room = room.to_owned();
        c.tasks.push(tokio::spawn(async move {
            let mut pending = Vec::new();
            for content in contents {
                let index = {
                    let mut r = rec.lock();
                    r.publishes.push(PubRec {
                        room: room.clone(),
                        content: content.clone(),
                        settled: false,
                        ok: false,
                        id: None,
                        offset: None,
                        code: None,
                        maybe_stored: None,
                    });
                    r.publishes.len() - 1
                };
                // Queued now, in call order; its answer is awaited by a task of its own.
                let answer = handle.publish(content);
                let r = rec.clone();
                pending.push(tokio::spawn(async move {
                    let result = answer.await;
                    r.update(|c| {
                        let p = &mut c.publishes[index];
                        p.settled = true;
                        match result {
                            Ok(ack) => {
                                p.ok = true;
                                p.id = Some(ack.id);
                                p.offset = ack.offset;
                            }
                            Err(e) => {
                                p.code = Some(e.code().as_str().to_owned());
                                p.maybe_stored = e.maybe_stored();
                            }
                        }
                    });
                }));
                if !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
            }
            for p in pending {
                let _ = p.await;
            }
            rec.update(|r| r.running -= 1);
        }));
        Ok(())
    }

    /// One publish now, awaited: its outcome.
    pub async fn publish_once(
        &self,
        name: &str,
        room: &str,
        content: &str,
    ) -> Result<Result<(), String>, String> {
        let handle = self.room(name, room)?.room.clone();
        Ok(handle
            .publish(content)
            .await
            .map(|_| ())
            .map_err(|e| e.code().as_str().to_owned()))
    }

    pub async fn presence(&self, name: &str, room: &str) -> Result<hub_client::Presence, String> {
        let handle = self.room(name, room)?.room.clone();
        handle.presence().await.map_err(|e| e.to_string())
    }

    pub async fn unsubscribe(&mut self, name: &str, room: &str) -> Result<(), String> {
        let r = self.room(name, room)?;
        r.room.unsubscribe().await;
        Ok(())
    }

    /// Closes the client, and waits until everything it said was recorded (its event stream
    /// ends after the `closed` state).
    pub async fn close(&mut self, name: &str) -> Result<(), String> {
        let c = self
            .clients
            .get_mut(name)
            .ok_or_else(|| format!("no client named {name}"))?;
        for r in c.rooms.values() {
            let position = r.room.position().await;
            r.rec.update(|rr| rr.position = position);
        }
        c.client.close().await;
        if let Some(listener) = c.listener.take() {
            tokio::time::timeout(Duration::from_secs(10), listener)
                .await
                .map_err(|_| format!("{name}'s events did not end after close"))?
                .map_err(|e| format!("{name}'s event listener: {e}"))?;
        }
        Ok(())
    }

    pub fn set_token_failing(&self, name: &str, failing: bool) -> Result<(), String> {
        self.get(name)?.failing.store(failing, Ordering::SeqCst);
        Ok(())
    }

    /// Closes every client and stops every task of the agent.
    pub async fn close_all(&mut self) {
        for (_, c) in self.clients.drain() {
            c.client.close().await;
            for t in c.tasks.into_iter().chain(c.listener) {
                t.abort();
            }
            for (_, r) in c.rooms {
                r.reader.abort();
            }
        }
    }
}
