//! What a room session may use of its client while it handles something: the current connection
//! (if any), the outbox, the client's own connection ids, the timers, the options and the time.
//! Built by the driver for each call, so a session holds no reference to the client.

use tokio::time::Instant;

use crate::bounded_set::BoundedSet;
use crate::connection::{Asked, Connection};
use crate::options::ClientOptions;
use crate::outbox::Outbox;
use crate::timers::Timers;

pub(crate) struct Link<'a> {
    /// The open connection; `None` while there is none.
    pub conn: Option<&'a mut Connection>,
    pub outbox: &'a mut Outbox,
    /// Client ids of this client's connections: their messages are its own.
    pub own_ids: &'a BoundedSet<String>,
    pub timers: &'a mut Timers,
    /// Set when a subscription's buffer is half full: the driver lets the application run.
    pub backlog: &'a mut bool,
    pub opts: &'a ClientOptions,
    pub now: Instant,
}

impl Link<'_> {
    /// The connection's number, once the hub welcomed it.
    pub(crate) fn generation(&self) -> Option<u64> {
        self.conn
            .as_ref()
            .filter(|c| c.welcomed())
            .map(|c| c.generation)
    }

    /// Leaves `room` on the welcomed connection (its `left` is then known as our answer).
    pub(crate) fn leave(&mut self, room: &str) -> bool {
        let now = self.now;
        match self.conn.as_mut().filter(|c| c.welcomed()) {
            Some(conn) => conn.send_leave(room, now),
            None => false,
        }
    }

    /// Sends a question about `room` and remembers who asked it.
    pub(crate) fn ask(&mut self, room: &str, session: u64, what: Asked, text: String) -> bool {
        let now = self.now;
        match self.conn.as_mut().filter(|c| c.welcomed()) {
            Some(conn) => {
                conn.expect(room, session, what);
                conn.send_control(text, now)
            }
            None => false,
        }
    }
}
