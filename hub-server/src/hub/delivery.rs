//! Local delivery: a frame to every member of a room (skipping what a join's replay already gave
//! a member) or to every client, each through its bounded queue, never waiting.

use std::sync::atomic::Ordering;

use super::handle::Hub;
use super::state::ClientId;
use crate::outbox::Recipient;
use crate::protocol::{Frame, Room};

impl Hub {
    /// Queues `frame` for every local member of `room` except `except`. Returns how many got it.
    pub fn deliver(&self, room: &Room, frame: &Frame, except: Option<&ClientId>) -> usize {
        let state = self.read();
        let Some(members) = state.rooms.get(room) else {
            return 0;
        };
        let seats = members
            .iter()
            .filter(|(_, seat)| !seat.replayed(frame))
            .map(|(id, seat)| (id, &seat.recipient));
        self.offer_all(seats, frame, except)
    }

    /// [`Hub::deliver`] for a message of this hub delivered late, without offset (Redis was slow
    /// to bring it back): only to members seated by `mark`, when it was handed on. A member who
    /// joined since gets it from its join's replay, with its offset, or not at all; so does a
    /// member in `had_it`, whose re-join's replay had it already.
    pub fn deliver_late(
        &self,
        room: &Room,
        frame: &Frame,
        except: &ClientId,
        mark: u64,
        had_it: &[ClientId],
    ) -> usize {
        let state = self.read();
        let Some(members) = state.rooms.get(room) else {
            return 0;
        };
        let seats = members
            .iter()
            .filter(|(id, seat)| seat.seated <= mark && !had_it.contains(id))
            .map(|(id, seat)| (id, &seat.recipient));
        self.offer_all(seats, frame, Some(except))
    }

    /// Queues `frame` for every local client except `except`.
    pub fn deliver_all(&self, frame: &Frame, except: Option<&ClientId>) -> usize {
        let state = self.read();
        let recipients = state.clients.iter().map(|(id, m)| (id, &m.recipient));
        self.offer_all(recipients, frame, except)
    }

    fn offer_all<'a>(
        &self,
        recipients: impl Iterator<Item = (&'a ClientId, &'a Recipient)>,
        frame: &Frame,
        except: Option<&ClientId>,
    ) -> usize {
        let mut delivered = 0u64;
        for (id, recipient) in recipients {
            if Some(id) != except && recipient.offer(frame) {
                delivered += 1;
            }
        }
        let c = &self.0.counters;
        c.delivered.fetch_add(delivered, Ordering::Relaxed);
        delivered as usize
    }
}
