//! A connection's identity over its life: who it is at connect (anonymous, the upgrade's bearer
//! token, or nobody yet), what each later `auth` frame means (the first admits the client, later
//! ones refresh it for the same user), and until when it may stay (its token's `exp`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::mode::{Auth, anonymous};
use super::verifier::Identity;
use crate::error::AuthFailure;

/// What the connection's credentials say.
#[derive(Debug)]
pub enum Login {
    /// Who the client is, for the first time: admit it.
    Admit(Identity),
    /// A fresh token for the user the connection already is.
    Refresh(Identity),
    /// No token yet (`auth_mode = jwt` without a bearer header): the first frame must bring one.
    Wait,
}

/// Why an `auth` frame is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `auth_mode = off`: tokens are not checked (the connection stays).
    AuthOff,
    /// `auth_mode = proxy`: the backend vouched at connect; tokens are not read (it stays).
    ByProxy,
    /// A bad token, or one for another user: the connection closes with 4001.
    Failed(AuthFailure),
}

impl Auth {
    /// At connect: anonymous clients are admitted at once; token holders when the upgrade's
    /// `Authorization: Bearer` token checks out, otherwise once their first frame brings one.
    pub fn at_connect(
        &self,
        client_id: &Arc<str>,
        bearer: Option<&str>,
    ) -> Result<Login, AuthFailure> {
        match (self, bearer) {
            (Auth::Off, _) => Ok(Login::Admit(anonymous(client_id))),
            (Auth::Jwt(verifier), Some(token)) => verifier.verify(token).map(Login::Admit),
            (Auth::Jwt(_), None) => Ok(Login::Wait),
            // Only the connect proxy admits in this mode (the session asks it before this).
            (Auth::Proxy { .. }, _) => Err(AuthFailure::Refused),
        }
    }

    /// An `auth` frame, for a connection that is `current` so far.
    pub fn on_token(&self, current: Option<&Identity>, token: &str) -> Result<Login, Refused> {
        let verifier = match self {
            Auth::Jwt(verifier) => verifier,
            Auth::Off => return Err(Refused::AuthOff),
            Auth::Proxy { .. } => return Err(Refused::ByProxy),
        };
        let identity = verifier.verify(token).map_err(Refused::Failed)?;
        match current {
            None => Ok(Login::Admit(identity)),
            Some(current) if current.user_id != identity.user_id => {
                Err(Refused::Failed(AuthFailure::OtherUser))
            }
            Some(_) => Ok(Login::Refresh(identity)),
        }
    }
}

/// How long a connection of `identity` may stay from now: until its token's `exp` plus `leeway`
/// (`None`: for ever, anonymous). A token may say it lasts for ever: a year is as good, and a
/// timer that far out cannot overflow.
pub fn time_left(identity: &Identity, leeway: Duration) -> Option<Duration> {
    let exp = identity.expires_at?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Some(
        Duration::from_secs(exp)
            .saturating_sub(now)
            .saturating_add(leeway)
            .min(Duration::from_secs(365 * 24 * 3600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Checks, Verifier};

    const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

    fn token(sub: &str, exp: u64) -> String {
        let claims = serde_json::json!({"sub": sub, "exp": exp});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("token")
    }

    fn in_an_hour() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 3600
    }

    fn jwt() -> Auth {
        let verifier = Verifier::new(&[SECRET.to_owned()], &[] as &[&str], Checks::default());
        Auth::Jwt(Arc::new(verifier.expect("verifier")))
    }

    #[test]
    fn the_first_token_admits_a_later_one_refreshes_and_another_users_is_refused() {
        let auth = jwt();
        let id: Arc<str> = "c1".into();
        assert!(matches!(auth.at_connect(&id, None), Ok(Login::Wait)));
        let Ok(Login::Admit(ana)) = auth.on_token(None, &token("ana", in_an_hour())) else {
            panic!("the first token admits");
        };
        assert!(matches!(
            auth.on_token(Some(&ana), &token("ana", in_an_hour())),
            Ok(Login::Refresh(_))
        ));
        assert_eq!(
            auth.on_token(Some(&ana), &token("bo", in_an_hour()))
                .unwrap_err(),
            Refused::Failed(AuthFailure::OtherUser)
        );
        assert_eq!(
            auth.on_token(None, "not.a.token").unwrap_err(),
            Refused::Failed(AuthFailure::Malformed)
        );
        let left = time_left(&ana, Duration::from_secs(30)).expect("expires");
        assert!(left > Duration::from_secs(3600) && left <= Duration::from_secs(3630));
    }

    #[test]
    fn with_auth_off_everyone_is_admitted_anonymous_and_tokens_are_not_read() {
        let id: Arc<str> = "c1".into();
        let Ok(Login::Admit(anon)) = Auth::Off.at_connect(&id, Some("whatever")) else {
            panic!("anonymous clients are admitted at once");
        };
        assert_eq!(&*anon.user_id, "c1");
        assert_eq!(time_left(&anon, Duration::from_secs(30)), None);
        assert_eq!(Auth::Off.on_token(None, "x").unwrap_err(), Refused::AuthOff);
    }
}
