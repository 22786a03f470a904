//! One client of the run, from its first connect to the worker's end: connect to its hub, upgrade
//! with its token, join its two rooms (after a reconnect with `since`, from where its counts stand),
//! read until the connection ends, then back off and try another hub. What it receives is counted
//! in its slot of the worker, not in the task, which holds only the socket and the bytes of a frame
//! cut by a read boundary.

use std::io::ErrorKind;
use std::rc::Rc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::frames::{self, Inbound, Kind, Resume, Stamp, unix_us};
use super::options::{PersonalScheme, Rooms};
use super::track::Verdict;
use super::worker_state::{MAX_FRAME, Slot, Worker};
use super::ws::{self, Answer, Frame, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};

/// A connection past its upgrade.
struct Conn {
    stream: TcpStream,
    /// The start of a frame the last read cut; empty (and unallocated) almost always.
    pending: Vec<u8>,
}

/// Where the joins of a connection stand.
#[derive(Debug, Default)]
struct Joining {
    rejoin: bool,
    welcomed: bool,
    all: bool,
    personal: bool,
}

impl Joining {
    fn done(&self) -> bool {
        self.welcomed && self.all && self.personal
    }
}

/// Who a connection is: its worker, its slot there and its user.
#[derive(Clone, Copy)]
struct Client<'a> {
    w: &'a Worker,
    index: usize,
    user: u64,
}

/// The client's whole life; it ends only with the worker.
pub async fn run(w: Rc<Worker>, index: usize) {
    let user = w.cfg.first_user + index as u64;
    let c = Client { w: &w, index, user };
    let hubs = w.hubs.len();
    let mut hub = (user % hubs as u64) as usize;
    // Failed attempts since the client was last ready; whether it was ready before (then it joins
    // with `since`).
    let (mut attempt, mut rejoin) = (0u32, false);
    loop {
        // Boxed, as the backoff below: what connecting and waiting hold is needed for a moment;
        // inline, every idle connection's task would carry its size for good.
        match Box::pin(establish(c, hub, rejoin)).await {
            Ok(conn) => {
                w.on_ready(rejoin, attempt);
                (attempt, rejoin) = (0, true);
                let reason = live(c, conn).await;
                w.on_end(reason);
            }
            Err(reason) => {
                w.on_failure(&reason);
                attempt += 1;
            }
        }
        Box::pin(tokio::time::sleep(w.backoff.delay(attempt, rand::random()))).await;
        if hubs > 1 {
            hub = (hub + 1 + rand::random_range(0..hubs - 1)) % hubs;
        }
    }
}

/// One attempt, bounded by the connect timeout; a first connect waits for a permit first.
async fn establish(c: Client<'_>, hub: usize, rejoin: bool) -> Result<Conn, String> {
    let Client { w, .. } = c;
    let _permit = match rejoin {
        true => None,
        false => Some(w.first_connects.acquire().await.expect("never closed")),
    };
    tokio::time::timeout(w.cfg.client.connect_timeout, connect(c, hub, rejoin))
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

async fn connect(c: Client<'_>, hub: usize, rejoin: bool) -> Result<Conn, String> {
    let Client { w, user, .. } = c;
    let h = &w.hubs[hub];
    let stream = TcpStream::connect(h.addr)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = stream.set_nodelay(true);
    let grants = w.cfg.rooms.grants(user);
    let grants: Vec<&str> = grants.iter().map(String::as_str).collect();
    let token = w
        .minter
        .token(&Rooms::user_id(user), &grants)
        .map_err(|e| e.to_string())?;
    let mut conn = Conn {
        stream,
        pending: Vec::new(),
    };
    conn.stream
        .write_all(ws::upgrade_request(&h.host, &h.path, &token).as_bytes())
        .await
        .map_err(|e| format!("upgrade: {}", e.kind()))?;
    read_answer(w, &mut conn).await?;
    let mut joining = Joining {
        rejoin,
        ..Joining::default()
    };
    // The welcome may have come with the answer.
    let mut out = Vec::new();
    let kept = std::mem::take(&mut conn.pending);
    let used = each_frame(&kept, &mut out, |f, out| {
        handle(c, f, out, Some(&mut joining))
    })?;
    conn.pending.extend_from_slice(&kept[used..]);
    send(&mut conn, &out).await?;
    while !joining.done() {
        pump(w, &mut conn, |f, out| handle(c, f, out, Some(&mut joining))).await?;
    }
    Ok(conn)
}

/// Reads until the connection ends; returns why it did. Kept small: this is what every idle
/// connection's task holds.
async fn live(c: Client<'_>, mut conn: Conn) -> String {
    let Client { w, .. } = c;
    loop {
        if let Err(e) = readable(&conn.stream).await {
            return format!("read: {}", e.kind());
        }
        let out = match read_frames(w, &mut conn, |f, out| handle(c, f, out, None)) {
            Ok(out) => out,
            Err(reason) => return reason,
        };
        if let Err(reason) = send(&mut conn, &out).await {
            return reason;
        }
    }
}

/// Reads the upgrade answer; leaves whatever followed it (frames) in `pending`.
async fn read_answer(w: &Worker, conn: &mut Conn) -> Result<(), String> {
    loop {
        readable(&conn.stream)
            .await
            .map_err(|e| format!("read: {}", e.kind()))?;
        let mut scratch = w.scratch.borrow_mut();
        let kept = conn.pending.len();
        scratch[..kept].copy_from_slice(&conn.pending);
        let n = match conn.stream.try_read(&mut scratch[kept..]) {
            Ok(0) => return Err("upgrade: ended".into()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => return Err(format!("upgrade: {}", e.kind())),
        };
        let data = &scratch[..kept + n];
        match ws::parse_answer(data) {
            Answer::Incomplete => conn.pending = data.to_vec(),
            Answer::Switched { header_len } => {
                conn.pending = data[header_len..].to_vec();
                return Ok(());
            }
            Answer::Refused(status) => return Err(format!("upgrade: {status}")),
        }
    }
}

/// Waits until the socket is readable, handles what is there ([`read_frames`]) and sends the
/// answers. `Err` is why the connection ended.
async fn pump(
    w: &Worker,
    conn: &mut Conn,
    on_frame: impl FnMut(Frame<'_>, &mut Vec<u8>) -> Result<(), String>,
) -> Result<(), String> {
    readable(&conn.stream)
        .await
        .map_err(|e| format!("read: {}", e.kind()))?;
    let out = read_frames(w, conn, on_frame)?;
    send(conn, &out).await
}

/// Until the socket has something to read. `TcpStream::readable()` would do the same, but its
/// future (a wait-list node of its own, 152 bytes) would sit in every idle connection's task; this
/// one parks the task's waker in the socket's own reader slot (one reader per socket here).
fn readable(stream: &TcpStream) -> impl Future<Output = std::io::Result<()>> + '_ {
    std::future::poll_fn(|cx| stream.poll_read_ready(cx))
}

/// Reads what the socket holds into the worker's scratch buffer (behind a cut frame kept from the
/// last read), gives each whole frame to `on_frame`, keeps a cut one; returns what `on_frame` wrote
/// to send back.
fn read_frames(
    w: &Worker,
    conn: &mut Conn,
    on_frame: impl FnMut(Frame<'_>, &mut Vec<u8>) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut scratch = w.scratch.borrow_mut();
    let kept = conn.pending.len();
    scratch[..kept].copy_from_slice(&conn.pending);
    let n = match conn.stream.try_read(&mut scratch[kept..]) {
        Ok(0) => return Err("ended without a close frame".into()),
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(out),
        Err(e) => return Err(format!("read: {}", e.kind())),
    };
    let data = &scratch[..kept + n];
    let used = each_frame(data, &mut out, on_frame)?;
    conn.pending.clear();
    conn.pending.extend_from_slice(&data[used..]);
    if conn.pending.is_empty() && conn.pending.capacity() > 0 {
        // Idle connections hold no buffer.
        conn.pending = Vec::new();
    }
    Ok(out)
}

/// Hands each whole frame of `data` to `on_frame`; returns the bytes they took.
fn each_frame(
    data: &[u8],
    out: &mut Vec<u8>,
    mut on_frame: impl FnMut(Frame<'_>, &mut Vec<u8>) -> Result<(), String>,
) -> Result<usize, String> {
    let mut at = 0;
    while let Some((frame, used)) =
        ws::parse_frame(&data[at..], MAX_FRAME).map_err(|e| e.to_string())?
    {
        at += used;
        on_frame(frame, out)?;
    }
    Ok(at)
}

async fn send(conn: &mut Conn, out: &[u8]) -> Result<(), String> {
    if out.is_empty() {
        return Ok(());
    }
    conn.stream
        .write_all(out)
        .await
        .map_err(|e| format!("write: {}", e.kind()))
}

fn handle(
    c: Client<'_>,
    frame: Frame<'_>,
    out: &mut Vec<u8>,
    joining: Option<&mut Joining>,
) -> Result<(), String> {
    match frame.opcode {
        OP_TEXT if frame.fin => text(c, frame.payload, out, joining),
        OP_PING => {
            ws::encode_client(OP_PONG, frame.payload, rand::random(), out);
            Ok(())
        }
        OP_PONG => Ok(()),
        OP_CLOSE => Err(ws::close_reason(frame.payload)),
        op => Err(format!("unexpected frame (opcode {op}, fin {})", frame.fin)),
    }
}

fn text(
    c: Client<'_>,
    payload: &[u8],
    out: &mut Vec<u8>,
    joining: Option<&mut Joining>,
) -> Result<(), String> {
    let Client { w, index, user } = c;
    let Some(f) = frames::parse(payload) else {
        w.on_error_frame(payload);
        return Ok(());
    };
    match (f.kind, joining) {
        ("message", _) => w.on_message(index, user, &f, out),
        ("broadcast", _) => w.on_broadcast(index, &f),
        ("welcome", Some(j)) => welcome(c, &f, out, j),
        ("joined", j) => joined(c, &f, j)?,
        ("error", joining) => {
            w.on_error_frame(payload);
            if joining.is_some() && f.room.is_some() {
                return Err(format!("join refused: {}", f.code.unwrap_or("?")));
            }
        }
        _ => {} // presence_diff, pong, …
    }
    Ok(())
}

/// The joins to send once welcomed: both rooms, or only `all` when the hub put the connection in
/// its personal room itself — except after a reconnect, when the personal room is joined again
/// with `since` to recover what was missed meanwhile.
fn welcome(c: Client<'_>, f: &Inbound<'_>, out: &mut Vec<u8>, j: &mut Joining) {
    let Client { w, index, user } = c;
    j.welcomed = true;
    let rooms = &w.cfg.rooms;
    let personal = rooms.personal_room(user);
    let mut slots = w.slots.borrow_mut();
    let slot = &mut slots[index];
    let auto = rooms.personal == PersonalScheme::User && f.rooms.contains(&personal.as_str());
    let mut joins = vec![(rooms.all_room.as_str(), &mut slot.all)];
    if auto && !j.rejoin {
        j.personal = true;
    } else {
        joins.push((personal.as_str(), &mut slot.personal));
    }
    for (room, track) in joins {
        let resume = match (j.rejoin, track.since()) {
            (false, _) => Resume::Fresh,
            (true, Some((epoch, offset))) => Resume::Since { epoch, offset },
            // A room the hub joined and that never carried a message here: everything it holds.
            (true, None) => Resume::History(100),
        };
        let frame = frames::join(room, resume);
        track.recovering = j.rejoin;
        ws::encode_client(OP_TEXT, frame.as_bytes(), rand::random(), out);
    }
}

/// A `joined`: while connecting, one of the two joins done; live, the end of a recovery.
fn joined(c: Client<'_>, f: &Inbound<'_>, joining: Option<&mut Joining>) -> Result<(), String> {
    let Client { w, index, user } = c;
    let (Some(room), Some(epoch), Some(offset)) = (f.room, f.epoch, f.offset) else {
        return Err("joined without room, epoch or offset (history off?)".into());
    };
    let mut slots = w.slots.borrow_mut();
    let slot = &mut slots[index];
    let (track, personal) = if room == w.cfg.rooms.all_room {
        (&mut slot.all, false)
    } else if w.cfg.rooms.is_personal(room, user) {
        (&mut slot.personal, true)
    } else {
        return Err(format!("joined a room it did not ask for: {room}"));
    };
    track.joined(epoch, offset);
    if let Some(j) = joining {
        if personal {
            j.personal = true;
        } else {
            j.all = true;
        }
    }
    if f.recovered == Some(false) {
        w.stats.borrow_mut().not_recovered += 1;
        w.count_end(format!("not recovered: {}", f.reason.unwrap_or("?")));
    }
    Ok(())
}

impl Worker {
    fn on_ready(&self, rejoin: bool, failed_attempts: u32) {
        let now = unix_us();
        let mut s = self.stats.borrow_mut();
        s.ready += 1;
        if rejoin {
            s.reconnects += 1;
            s.max_attempts = s.max_attempts.max(u64::from(failed_attempts) + 1);
        } else {
            s.ever_ready += 1;
            if s.first_ready_us == 0 {
                s.first_ready_us = now;
            }
        }
        s.last_ready_us = s.last_ready_us.max(now);
    }

    fn on_end(&self, reason: String) {
        {
            let mut s = self.stats.borrow_mut();
            s.ready -= 1;
            s.disconnects += 1;
        }
        self.count_end(reason);
    }

    fn on_failure(&self, reason: &str) {
        self.stats.borrow_mut().connect_failures += 1;
        self.count_end(format!("connect failed: {reason}"));
    }

    fn on_error_frame(&self, payload: &[u8]) {
        let mut s = self.stats.borrow_mut();
        s.error_frames += 1;
        if s.first_error.is_none() {
            s.first_error =
                Some(String::from_utf8_lossy(&payload[..payload.len().min(200)]).into());
        }
    }

    fn on_message(&self, index: usize, user: u64, f: &Inbound<'_>, out: &mut Vec<u8>) {
        let (Some(room), id) = (f.room, f.id.unwrap_or_default()) else {
            return;
        };
        let now = unix_us();
        let mut slots = self.slots.borrow_mut();
        let slot: &mut Slot = &mut slots[index];
        let personal = self.cfg.rooms.is_personal(room, user);
        let track = if room == self.cfg.rooms.all_room {
            &mut slot.all
        } else if personal {
            &mut slot.personal
        } else {
            slot.misrouted += 1;
            return;
        };
        let duplicates = track.duplicates;
        match track.message(f.epoch, f.offset, id) {
            Verdict::Copy => {
                let mut s = self.stats.borrow_mut();
                if track.duplicates > duplicates && s.first_duplicate.is_none() {
                    s.first_duplicate = Some(format!(
                        "room {room}, offset {:?}, replayed {}, user {user} (first on hub {}; \
                         this worker's connections had reconnected {} times by then)",
                        f.offset,
                        f.replayed,
                        user % self.hubs.len().max(1) as u64,
                        s.reconnects
                    ));
                }
                return;
            }
            Verdict::New => {}
            Verdict::Gap => {
                // Ask for what was stepped over (the hub may have shed it under load).
                if let Some((epoch, offset)) = track.since() {
                    let frame = frames::join(room, Resume::Since { epoch, offset });
                    ws::encode_client(OP_TEXT, frame.as_bytes(), rand::random(), out);
                    (track.recovering, track.in_place) = (true, true);
                    self.stats.borrow_mut().recoveries += 1;
                }
            }
        }
        let mut s = self.stats.borrow_mut();
        if !personal {
            s.all_msgs += 1;
            s.all_last_us = s.all_last_us.max(now);
            return;
        }
        s.personal_msgs += 1;
        drop(s);
        match f.content.and_then(Stamp::parse) {
            Some(Stamp {
                kind: Kind::Personal,
                number,
                due_us,
            }) if self.personal.user_of(number) == user => {
                slot.personal_numbers = slot.personal_numbers.wrapping_add(number);
                let latency = now.saturating_sub(due_us).max(1);
                let h = if f.replayed {
                    &self.latency_replayed
                } else {
                    &self.latency_live
                };
                h.borrow_mut().saturating_record(latency);
            }
            _ => slot.misrouted += 1,
        }
    }

    fn on_broadcast(&self, index: usize, f: &Inbound<'_>) {
        let Some(Stamp {
            kind: Kind::Broadcast,
            number,
            ..
        }) = f.content.and_then(Stamp::parse)
        else {
            return;
        };
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[index];
        let bit = 1u64 << number.min(63);
        if slot.broadcasts & bit != 0 {
            slot.broadcast_repeats += 1;
            return;
        }
        slot.broadcasts |= bit;
        let mut s = self.stats.borrow_mut();
        s.broadcasts += 1;
        s.broadcast_last_us = s.broadcast_last_us.max(unix_us());
    }
}

#[cfg(test)]
mod size {
    use std::time::Duration;

    use super::*;
    use crate::c250k::options::ClientOpts;
    use crate::c250k::worker_state::WorkerConfig;

    /// Every idle connection holds its task's future and its slot for the whole run: keep them
    /// small (the task was 576 bytes, optimised, before the connect phase and the backoff were
    /// boxed and the read wait slimmed; 368 after; the slot 256 before its rare lists were boxed, 184 after).
    #[test]
    fn a_connection_task_is_small() {
        let cfg = WorkerConfig {
            urls: vec!["ws://127.0.0.1:9/ws".into()],
            first_user: 0,
            users: 1,
            total_users: 1,
            rooms: Rooms {
                all_room: "all".into(),
                personal: PersonalScheme::Join,
                personal_prefix: "p-".into(),
            },
            client: ClientOpts {
                connect_concurrency: 1,
                connect_timeout: Duration::from_secs(1),
                backoff_base: Duration::from_secs(1),
                backoff_max: Duration::from_secs(1),
                token_ttl: Duration::from_secs(60),
            },
            jwt_secret: "x".repeat(32),
        };
        let w = Rc::new(Worker::new(cfg, 0).expect("worker"));
        let task = run(w, 0);
        // Optimised builds lay futures out tighter than test builds.
        let limit = if cfg!(debug_assertions) { 640 } else { 400 };
        let size = std::mem::size_of_val(&task);
        assert!(size <= limit, "a connection's task is {size} bytes");
        assert!(
            std::mem::size_of::<Slot>() <= 184,
            "a slot is {} bytes",
            std::mem::size_of::<Slot>()
        );
    }
}
