//! Who the client is, from the session's side: vouched for by the backend's connect proxy
//! (`auth_mode = proxy`), admitted at connect or by its first `auth` frame
//! (counted against its user's limit, welcomed, then put in the hub with its starting rooms — the
//! default room, its personal room, its server-side subscriptions — so the welcome is always its
//! first frame), refreshed by later `auth` frames, closed when its token runs out. What a token
//! means is [`crate::auth`]'s business.

use std::net::IpAddr;

use super::state::Session;
use crate::auth::{Identity, Login, Refused, access, time_left};
use crate::error::{AuthFailure, CloseReason, ProtocolError};
use crate::hooks::connect;
use crate::hub::{ClientId, Newcomer};
use crate::namespace::PresenceMode;
use crate::protocol::{Frame, Room};
use crate::state::AppState;

/// `auth_mode = proxy`: who the backend says the client is, or why it is closed (with the
/// backend's message as the close reason when it gave one). A backend that fails refuses
/// (fails closed).
pub(super) async fn ask_backend(
    state: &AppState,
    client_id: &ClientId,
    ip: IpAddr,
    headers: &connect::Headers,
) -> Result<Identity, (CloseReason, Option<String>)> {
    let request = connect::Request {
        client_id,
        hub: state.hub.name(),
        remote_addr: ip.to_string(),
        headers,
    };
    let (failure, text) = match state.proxies.connect(&request).await {
        Ok(connect::Verdict::Admit(identity)) => return Ok(identity),
        Ok(connect::Verdict::Refuse(message)) => (AuthFailure::Refused, Some(message)),
        Err(_) => (AuthFailure::BackendUnavailable, None),
    };
    tracing::info!(%client_id, %ip, reason = failure.text(), "client refused by the connect proxy");
    Err((CloseReason::AuthFailed(failure), text))
}

impl Session<'_> {
    /// At connect: admitted now (`vouched` for by the connect proxy, or by the upgrade's token),
    /// or waiting up to `auth_timeout` for a token.
    pub(super) fn start(
        &mut self,
        bearer: Option<&str>,
        vouched: Option<Identity>,
    ) -> Result<(), CloseReason> {
        if let Some(identity) = vouched {
            return self.admit(identity);
        }
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
    /// put it in the hub (in its starting rooms), so the welcome is always its first frame.
    fn admit(&mut self, identity: Identity) -> Result<(), CloseReason> {
        let hub = &self.state.hub;
        if self.state.auth.is_required() {
            let slot = self.state.users.try_take(&identity.user_id);
            self.user_slot = Some(slot.ok_or(CloseReason::TooManyUserConnections)?);
        }
        let rooms = self.starting_rooms(&identity);
        let names: Vec<&str> = rooms.iter().map(|(room, _)| room.as_str()).collect();
        let instance = hub.instance_id().to_string();
        self.me.offer(&Frame::welcome(
            self.client_id,
            hub.name(),
            &instance,
            &names,
            identity.user(),
        ));
        hub.register(Newcomer {
            client_id: self.client_id.clone(),
            recipient: self.me.clone(),
            user: identity.user_id.clone(),
            name: identity.name.clone(),
            rooms,
        });
        tracing::debug!(client_id = %self.client_id, user = %identity.user_id, "client admitted");
        self.deadline = self.expiry(&identity);
        self.identity = Some(identity);
        Ok(())
    }

    /// The rooms a connection is in from the start, in this order: the default room (when its
    /// grants allow it), its personal room (`personal_rooms`), its server-side subscriptions.
    /// A subscription the namespaces refuse (an undeclared namespace, another user's personal
    /// room) is logged and left out; so is what goes past `max_rooms_per_client`.
    fn starting_rooms(&self, identity: &Identity) -> Vec<(Room, PresenceMode)> {
        let settings = &self.state.settings;
        let namespaces = &settings.namespaces;
        let default_room = Room::default_room();
        let default = identity
            .grants
            .may_join(&default_room)
            .then_some(default_room);
        let personal = settings
            .personal_rooms
            .then(|| identity.personal_room.clone());
        let wanted = default
            .into_iter()
            .chain(personal)
            .chain(identity.subs.iter().cloned());
        let mut rooms: Vec<(Room, PresenceMode)> = Vec::new();
        for room in wanted {
            if rooms.iter().any(|(r, _)| *r == room) {
                continue;
            }
            let allowed = namespaces
                .lookup(&room)
                .and_then(|policy| access::may_join(identity, &room, policy).map(|()| policy));
            let policy = match allowed {
                Ok(policy) => policy,
                Err(err) => {
                    let user = &identity.user_id;
                    let client_id = self.client_id;
                    // A backend's mistake (a bad `subs` entry): said once, the connection stays.
                    tracing::warn!(%client_id, %user, %room, %err, "server-side subscription refused");
                    continue;
                }
            };
            if rooms.len() == settings.max_rooms_per_client {
                let (user, limit) = (&identity.user_id, rooms.len());
                let client_id = self.client_id;
                tracing::warn!(%client_id, %user, %room, limit, "starting room past max_rooms_per_client: not joined");
                continue;
            }
            rooms.push((room, policy.presence_mode()));
        }
        rooms
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
            Err(Refused::ByProxy) => {
                self.me.offer(&Frame::error(&ProtocolError::AuthByProxy));
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
        // Grants may have narrowed: leave what the new token no longer allows (its own grants
        // and subscriptions; the personal room stays, the user being the same).
        let namespaces = &self.state.settings.namespaces;
        for room in hub.rooms_of(self.client_id) {
            let allowed = access::may_join(&identity, &room, namespaces.policy(&room)).is_ok();
            if !allowed && hub.leave(self.client_id, &room).is_ok() {
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
