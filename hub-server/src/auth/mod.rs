//! Identity and access, in one place: who a connection is (a JWT from the upgrade's bearer header
//! or an `auth` frame, anonymous in `auth_mode = off`, or what the backend's connect proxy says in
//! `auth_mode = proxy`) and until when ([`login`]), what it may do
//! ([`grants`], weighed with the room's namespace by [`access`]), how many connections a user may
//! hold ([`user_slots`]), and the server API's keys ([`api_keys`]). The session asks [`Auth`] at
//! connect and on every `auth` frame, and [`access`] before each command; the hub core never sees
//! tokens.

pub mod access;
mod api_keys;
mod bearer;
mod grants;
mod login;
mod mode;
mod user_slots;
mod verifier;

pub use api_keys::{ApiKeys, BadApiKeys};
pub use bearer::bearer_token;
pub use grants::{BadGrants, GrantClaims, Grants, MAX_PATTERNS, Patterns};
pub use login::{Login, Refused, time_left};
pub use mode::{Auth, anonymous};
pub use user_slots::{UserSlot, UserSlots};
pub use verifier::{
    Checks, Identity, KeyError, MAX_SUB_BYTES, MIN_SECRET_BYTES, Verifier, shown_name,
};
