//! Who the client is, from the session's side: admitted at connect or by its first `auth` frame
//! (counted against its user's limit, welcomed, then put in the hub, so the welcome is always its
//! first frame), refreshed by later `auth` frames, closed when its token runs out. What a token
//! means is [`crate::auth`]'s business.

use super::state::Session;
use crate::auth::{Identity, Login, Refused, time_left};
use crate::error::{AuthFailure, CloseReason, ProtocolError};
use crate::hub::Newcomer;
use crate::protocol::{DEFAULT_ROOM, Frame, Room};

impl Session<'_> {
    /// At connect: admitted now, or waiting up to `auth_timeout` for a token.
    pub(super) fn start(&mut self, bearer: Option<&str>) -> Result<(), CloseReason> {
        let login = self
            .state
            .auth
            .at_connect(self.client_id, bearer)
            .map_err(|f| self.refused(f))?;
        match login {
            Login::Admit(identity) | Login::Refresh(identity) => self.admit(identity),
            Login::Wait => {
                let at = tokio::time::Instant::now() + self.state.settings.auth_timeout;
                self.deadline = Some((at, CloseReason::AuthFailed(AuthFailure::NoToken)));
                Ok(())
            }
        }
    }

    /// The client is who it says: count it against its user's limit, welcome it, and only then
    /// put it in the hub, so the welcome is always its first frame.
    fn admit(&mut self, identity: Identity) -> Result<(), CloseReason> {
        let hub = &self.state.hub;
        if self.state.auth.is_required() {
            let slot = self.state.users.try_take(&identity.user_id);
            self.user_slot = Some(slot.ok_or(CloseReason::TooManyUserConnections)?);
        }
        let default_room = Room::default_room();
        let in_default_room = identity.grants.may_join(&default_room);
        let rooms: &[&str] = if in_default_room {
            &[DEFAULT_ROOM]
        } else {
            &[]
        };
        let instance = hub.instance_id().to_string();
        self.me.offer(&Frame::welcome(
            self.client_id,
            hub.name(),
            &instance,
            rooms,
            identity.user(),
        ));
        hub.register(Newcomer {
            client_id: self.client_id.clone(),
            recipient: self.me.clone(),
            user: identity.user_id.clone(),
            name: identity.name.clone(),
            in_default_room,
        });
        tracing::debug!(client_id = %self.client_id, user = %identity.user_id, "client admitted");
        self.deadline = self.expiry(&identity);
        self.identity = Some(identity);
        Ok(())
    }

    /// A token from an `auth` frame: the first one admits the client; a later one for the same
    /// user is a refresh that moves the expiry (and may change name and grants).
    pub(super) fn authenticate(&mut self, token: &str) -> Result<(), CloseReason> {
        let login = match self.state.auth.on_token(self.identity.as_ref(), token) {
            Ok(login) => login,
            Err(Refused::AuthOff) => {
                self.me.offer(&Frame::error(&ProtocolError::AuthOff));
                return Ok(());
            }
            Err(Refused::Failed(failure)) => return Err(self.refused(failure)),
        };
        match login {
            Login::Admit(identity) => self.admit(identity),
            Login::Refresh(identity) => {
                self.refresh(identity);
                Ok(())
            }
            Login::Wait => Ok(()),
        }
    }

    fn refresh(&mut self, identity: Identity) {
        let hub = &self.state.hub;
        let exp = identity.expires_at.unwrap_or_default();
        self.me.offer(&Frame::authenticated(identity.user(), exp));
        // Grants may have narrowed: leave what the new token no longer allows.
        for room in hub.rooms_of(self.client_id) {
            if !identity.grants.may_join(&room) && hub.leave(self.client_id, &room).is_ok() {
                self.me.offer(&Frame::left(&room));
            }
        }
        self.deadline = self.expiry(&identity);
        self.identity = Some(identity);
    }

    fn refused(&self, failure: AuthFailure) -> CloseReason {
        // The reason only: never the token.
        tracing::info!(client_id = %self.client_id, ip = %self.ip, reason = failure.text(), "token refused");
        CloseReason::AuthFailed(failure)
    }

    /// When the token runs out (`exp` + `jwt_leeway`), as a timer instant.
    fn expiry(&self, identity: &Identity) -> Option<(tokio::time::Instant, CloseReason)> {
        let left = time_left(identity, self.state.settings.jwt_leeway)?;
        Some((
            tokio::time::Instant::now() + left,
            CloseReason::TokenExpired,
        ))
    }
}
