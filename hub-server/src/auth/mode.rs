//! The hub's authentication, chosen by `auth_mode`: anonymous clients, or JWTs checked by the
//! configured keys.

use std::sync::Arc;

use super::grants::{Grants, Patterns};
use super::verifier::{Checks, Identity, KeyError, Verifier};
use crate::config::{AuthMode, Settings, comma_list};

/// The hub's authentication, chosen by `auth_mode`.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Anonymous clients that may do everything: wave 1's behaviour.
    Off,
    Jwt(Arc<Verifier>),
    /// The backend's connect proxy says who each client is, before `welcome` (the session asks
    /// it through `hooks::connect`); its grants default to `jwt_default_rooms`, as a token's.
    Proxy {
        default_rooms: Patterns,
    },
}

impl Auth {
    pub fn from_settings(settings: &Settings) -> Result<Self, KeyError> {
        match settings.auth_mode {
            AuthMode::Off => Ok(Auth::Off),
            AuthMode::Proxy => Ok(Auth::Proxy {
                default_rooms: Patterns::parse_list(&settings.jwt_default_rooms),
            }),
            AuthMode::Jwt => {
                let list = |s: Option<&str>| -> Vec<String> {
                    comma_list(s.unwrap_or_default())
                        .map(str::to_owned)
                        .collect()
                };
                let checks = Checks {
                    audience: settings.jwt_audience.clone(),
                    issuer: settings.jwt_issuer.clone(),
                    leeway_secs: settings.jwt_leeway.as_secs(),
                    default_rooms: Patterns::parse_list(&settings.jwt_default_rooms),
                };
                let secrets = list(
                    settings
                        .jwt_secrets
                        .as_ref()
                        .map(secrecy::ExposeSecret::expose_secret),
                );
                let public_keys = list(settings.jwt_public_keys.as_deref());
                Ok(Auth::Jwt(Arc::new(Verifier::new(
                    &secrets,
                    &public_keys,
                    checks,
                )?)))
            }
        }
    }

    pub fn is_required(&self) -> bool {
        matches!(self, Auth::Jwt(_) | Auth::Proxy { .. })
    }

    pub fn mode(&self) -> &'static str {
        match self {
            Auth::Off => "off",
            Auth::Jwt(_) => "jwt",
            Auth::Proxy { .. } => "proxy",
        }
    }
}

/// An anonymous client in `auth_mode = off`: its id is its client id, and it may do everything.
pub fn anonymous(client_id: &Arc<str>) -> Identity {
    Identity::new(
        client_id.clone(),
        None,
        Grants::everything(),
        Vec::new(),
        None,
    )
}
