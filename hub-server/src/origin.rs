//! Which browser pages may open a WebSocket here, against cross-site WebSocket hijacking.

use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// `*`: any origin.
    Any,
    /// Exact origins, e.g. `http://localhost:9081`.
    List(HashSet<String>),
    /// The default: pages served from this machine (localhost, 127.0.0.0/8, [::1]) on any port.
    Loopback,
}

impl AllowedOrigins {
    pub fn from_setting(setting: Option<&str>) -> Self {
        match setting.map(str::trim) {
            None | Some("") => AllowedOrigins::Loopback,
            Some("*") => AllowedOrigins::Any,
            Some(list) => AllowedOrigins::List(
                list.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                    .filter(|o| !o.is_empty())
                    .collect(),
            ),
        }
    }

    /// A request without an Origin header is not from a browser and is allowed.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        match self {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => {
                list.contains(&origin.trim_end_matches('/').to_ascii_lowercase())
            }
            AllowedOrigins::Loopback => is_loopback_origin(origin),
        }
    }
}

fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, _)) => return addr == "::1",
            None => return false,
        }
    } else {
        rest.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_the_default() {
        let o = AllowedOrigins::from_setting(None);
        assert!(o.allows(Some("http://localhost:9081")));
        assert!(o.allows(Some("http://127.0.0.1:9082")));
        assert!(o.allows(Some("http://[::1]:9081")));
        assert!(o.allows(None), "non-browser clients send no Origin");
        assert!(!o.allows(Some("http://evil.example")));
        assert!(!o.allows(Some("http://localhost.evil.example")));
        assert!(!o.allows(Some("null")));
    }

    #[test]
    fn a_list_is_exact() {
        let o = AllowedOrigins::from_setting(Some("http://localhost:9081, https://chat.example/"));
        assert!(o.allows(Some("http://localhost:9081")));
        assert!(o.allows(Some("https://chat.example")));
        assert!(!o.allows(Some("http://localhost:9082")));
        assert!(!o.allows(Some("https://chat.example.evil")));
    }

    #[test]
    fn star_allows_all() {
        assert!(AllowedOrigins::from_setting(Some("*")).allows(Some("http://anything.example")));
    }
}
