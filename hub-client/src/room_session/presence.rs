//! A room's presence questions: asked on the connection the room is joined on (again on the next
//! one if it dropped first), answered in order, failed when the room ends or times out.

use std::time::Duration;

use tokio::sync::oneshot;

use super::state::{PresenceWaiter, RoomSession};
use crate::connection::Asked;
use crate::error::{ErrorCode, HubError};
use crate::frame::{Inbound, Kind, outbound};
use crate::link::Link;
use crate::presence::Presence;
use crate::timers::TimerKey;

impl RoomSession {
    /// A presence question (answered through `reply`, by its id `id`).
    pub(crate) fn ask_presence(
        &mut self,
        id: u64,
        reply: oneshot::Sender<Result<Presence, HubError>>,
        link: &mut Link<'_>,
    ) {
        if let Some(err) = self.refusal() {
            let _ = reply.send(Err(err));
            return;
        }
        self.presence.push(PresenceWaiter {
            id,
            sent_gen: None,
            reply,
        });
        link.timers
            .set(TimerKey::Presence(id), link.now + link.opts.publish_timeout);
        self.send_presence(link);
    }

    /// Asked on the connection the room is joined on; asked again on the next one if it dropped.
    pub(super) fn send_presence(&mut self, link: &mut Link<'_>) {
        if !self.joined_now(link) {
            return;
        }
        let generation = link.generation();
        for w in self
            .presence
            .iter_mut()
            .filter(|w| w.sent_gen != generation)
        {
            w.sent_gen = generation;
            link.ask(
                &self.name,
                self.id,
                Asked::Presence,
                outbound::presence(&self.name),
            );
        }
    }

    pub(super) fn on_presence_answer(&mut self, frame: Inbound, link: &mut Link<'_>) {
        let generation = link.generation();
        let Some(i) = self.presence.iter().position(|w| w.sent_gen == generation) else {
            return;
        };
        let w = self.presence.remove(i);
        link.timers.clear(TimerKey::Presence(w.id));
        let answer = match frame.kind {
            Kind::Presence => Ok(frame.into_presence()),
            _ => Err(HubError::new(
                ErrorCode::from_hub(frame.code.as_deref()),
                frame
                    .message
                    .unwrap_or_else(|| "presence refused".to_owned()),
            )),
        };
        let _ = w.reply.send(answer);
    }

    /// Presence question `id` timed out; false when it is not this room's.
    pub(crate) fn expire_presence(&mut self, id: u64, timeout: Duration) -> bool {
        let Some(i) = self.presence.iter().position(|w| w.id == id) else {
            return false;
        };
        let w = self.presence.remove(i);
        let _ = w.reply.send(Err(HubError::new(
            ErrorCode::Timeout,
            format!("no presence answer within {} ms", timeout.as_millis()),
        )));
        true
    }

    pub(super) fn fail_presence(&mut self, err: &HubError, link: &mut Link<'_>) {
        for w in self.presence.drain(..) {
            link.timers.clear(TimerKey::Presence(w.id));
            let _ = w.reply.send(Err(err.clone()));
        }
    }
}
