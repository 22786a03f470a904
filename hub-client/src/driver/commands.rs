//! The handles' commands carried out (start, subscribe, publish, presence, unsubscribe, close),
//! and what subscriptions signal without a command (dropped, caught up after a full buffer).

use std::sync::Arc;

use tokio::time::Instant;

use super::channels::Command;
use super::task::Driver;
use crate::error::{ErrorCode, HubError};
use crate::message::Position;
use crate::outbox::Reply;
use crate::room_queue::RoomQueue;
use crate::room_session::RoomSession;
use crate::timers::TimerKey;

fn unsubscribed(session: u64) -> HubError {
    HubError::new(
        ErrorCode::Unsubscribed,
        format!("subscription {session} is unsubscribed"),
    )
}

impl Driver {
    pub(super) fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Start => self.start(),
            Command::Subscribe {
                room,
                history,
                since,
                reply,
            } => {
                let _ = reply.send(self.subscribe(room, history, since));
            }
            Command::Unsubscribe { session, done } => {
                self.unsubscribe(session);
                let _ = done.send(());
            }
            Command::Publish {
                session,
                content,
                reply,
            } => self.publish(session, content, reply),
            Command::Presence { session, reply } => {
                let id = self.next_id();
                let mut link = self.ctx.link();
                match self.sessions.values_mut().find(|s| s.id == session) {
                    Some(s) => s.ask_presence(id, reply, &mut link),
                    None => {
                        let _ = reply.send(Err(unsubscribed(session)));
                    }
                }
            }
            Command::Position { session, reply } => {
                let position = self
                    .sessions
                    .values()
                    .find(|s| s.id == session)
                    .and_then(RoomSession::position);
                let _ = reply.send(position);
            }
            Command::Close { done } => {
                self.shutdown(HubError::closed(), 1000, "closed by the application");
                let _ = done.send(());
            }
        }
    }

    fn subscribe(
        &mut self,
        room: String,
        history: Option<u32>,
        since: Option<Position>,
    ) -> Result<(u64, Arc<RoomQueue>), HubError> {
        if self.sessions.contains_key(&room) {
            return Err(HubError::new(
                ErrorCode::AlreadySubscribed,
                format!("already subscribed to {room}"),
            ));
        }
        let id = self.next_id();
        let opts = &self.ctx.opts;
        let queue = Arc::new(RoomQueue::new(
            opts.room_buffer,
            opts.room_buffer_bytes,
            self.attention.clone(),
        ));
        let mut session = RoomSession::new(
            id,
            room.clone(),
            history,
            since.as_ref(),
            queue.clone(),
            opts.max_held,
            opts.dedupe_window,
        );
        let mut link = self.ctx.link();
        if link.generation().is_some() {
            session.on_connected(&mut link);
        }
        self.sessions.insert(room, session);
        Ok((id, queue))
    }

    fn unsubscribe(&mut self, session: u64) {
        let Some(name) = self
            .sessions
            .values()
            .find(|s| s.id == session)
            .map(|s| s.name.clone())
        else {
            return;
        };
        let mut link = self.ctx.link();
        if let Some(mut s) = self.sessions.remove(&name) {
            s.unsubscribe(&mut link);
        }
        self.pump();
    }

    fn publish(&mut self, session: u64, content: String, reply: Reply) {
        let Some(s) = self.sessions.values().find(|s| s.id == session) else {
            self.ctx.outbox.release_one();
            let _ = reply.send(Err(unsubscribed(session).stored(false)));
            return;
        };
        if let Some(err) = s.refusal() {
            self.ctx.outbox.release_one();
            let _ = reply.send(Err(err.stored(false)));
            return;
        }
        let room = s.name.clone();
        let seq = self.next_id();
        if let Some(due) = self
            .ctx
            .outbox
            .publish(seq, &room, content, reply, Instant::now())
        {
            self.ctx.timers.set(TimerKey::Publish(seq), due);
            self.pump();
        }
    }

    /// A subscription signalled: dropped (unsubscribe), or caught up after its buffer filled.
    pub(super) fn on_attention(&mut self) {
        let notices: Vec<(u64, _)> = self
            .sessions
            .values()
            .map(|s| (s.id, s.queue().take_notice()))
            .filter(|(_, n)| n.caught_up || n.dropped)
            .collect();
        for (id, notice) in notices {
            if notice.dropped {
                self.unsubscribe(id);
                continue;
            }
            let mut link = self.ctx.link();
            if let Some(s) = self.sessions.values_mut().find(|s| s.id == id) {
                s.on_caught_up(&mut link);
            }
        }
    }
}
