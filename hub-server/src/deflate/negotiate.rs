//! The server's half of the permessage-deflate handshake (RFC 7692 5 and 7.1): of the client's
//! offers, the first one we can honour wins, and the answer always imposes no context takeover in
//! both directions, so no connection keeps a compression window between messages.

use http::HeaderMap;
use http::header::SEC_WEBSOCKET_EXTENSIONS;

use super::compress::{MAX_WINDOW_BITS, MIN_WINDOW_BITS};

/// What the handshake settled on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreed {
    /// The LZ77 window the hub compresses with: the client's `server_max_window_bits`, else 15.
    pub window_bits: u8,
    /// The 101 answer's `Sec-WebSocket-Extensions`.
    pub response: String,
}

/// The answer to the client's `Sec-WebSocket-Extensions` offers, `None` when none is acceptable
/// (the connection then goes uncompressed).
pub fn negotiate(headers: &HeaderMap) -> Option<Agreed> {
    headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(accept)
}

/// One offer: `permessage-deflate` and its parameters, or `None` to decline it. RFC 7692 7.1 has
/// an offer declined when a parameter is unknown, repeated, or has a bad value.
fn accept(offer: &str) -> Option<Agreed> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let (mut server_nct, mut client_nct, mut client_bits) = (false, false, false);
    let mut server_bits = None;
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(unquote(value.trim()))),
            None => (param, None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) if !server_nct => server_nct = true,
            ("client_no_context_takeover", None) if !client_nct => client_nct = true,
            ("server_max_window_bits", Some(value)) if server_bits.is_none() => {
                server_bits = Some(window_bits(value)?);
            }
            // A limit on the client's own window, or a hint that it can take one: our inflaters
            // have the largest window and read any, so there is nothing to answer.
            ("client_max_window_bits", value) if !client_bits => {
                if let Some(value) = value {
                    window_bits(value)?;
                }
                client_bits = true;
            }
            _ => return None,
        }
    }
    let mut response =
        String::from("permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    let window_bits = match server_bits {
        None => MAX_WINDOW_BITS,
        // zlib cannot compress with a 256-byte window: decline, a later offer may do.
        Some(bits) if bits < MIN_WINDOW_BITS => return None,
        Some(bits) => {
            // Accepting the parameter is answering it (RFC 7692 7.1.2.1), with the same value.
            response.push_str(&format!("; server_max_window_bits={bits}"));
            bits
        }
    };
    Some(Agreed {
        window_bits,
        response,
    })
}

/// A parameter's value may come as a quoted string (RFC 6455 9.1).
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// A window size: a decimal 8–15 without leading zeros (RFC 7692 7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    (8..=MAX_WINDOW_BITS).contains(&bits).then_some(bits)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn offered(values: &[&str]) -> Option<Agreed> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(
                SEC_WEBSOCKET_EXTENSIONS,
                HeaderValue::from_str(v).expect("ascii"),
            );
        }
        negotiate(&headers)
    }

    fn bits(values: &[&str]) -> Option<u8> {
        offered(values).map(|a| a.window_bits)
    }

    const PLAIN_ANSWER: &str =
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

    #[test]
    fn browsers_offers_are_accepted_without_context_takeover() {
        for offer in [
            "permessage-deflate; client_max_window_bits", // Chrome
            "permessage-deflate",                         // Firefox
            "PerMessage-Deflate ; Client_Max_Window_Bits",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ] {
            let agreed = offered(&[offer]).expect(offer);
            assert_eq!(agreed.window_bits, 15, "{offer}");
            assert_eq!(agreed.response, PLAIN_ANSWER, "{offer}");
        }
        assert_eq!(offered(&[]), None);
        assert_eq!(offered(&["x-webkit-deflate-frame"]), None);
    }

    #[test]
    fn a_smaller_server_window_is_honoured_and_answered() {
        let agreed = offered(&["permessage-deflate; server_max_window_bits=10"]).expect("ok");
        assert_eq!(agreed.window_bits, 10);
        assert_eq!(
            agreed.response,
            format!("{PLAIN_ANSWER}; server_max_window_bits=10")
        );
        assert_eq!(
            bits(&["permessage-deflate; server_max_window_bits=\"12\""]),
            Some(12)
        );
        assert_eq!(
            bits(&["permessage-deflate; server_max_window_bits=15"]),
            Some(15)
        );
        assert_eq!(
            bits(&["permessage-deflate; server_max_window_bits=9"]),
            Some(9)
        );
        // 8 cannot be honoured: that offer is declined and the next one taken.
        assert_eq!(
            bits(&["permessage-deflate; server_max_window_bits=8"]),
            None
        );
        assert_eq!(
            bits(&["permessage-deflate; server_max_window_bits=8, permessage-deflate"]),
            Some(15)
        );
        assert_eq!(
            bits(&[
                "permessage-deflate; server_max_window_bits=8",
                "permessage-deflate; server_max_window_bits=11"
            ]),
            Some(11),
            "offers on several header lines"
        );
    }

    #[test]
    fn bad_offers_are_declined() {
        for offer in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; server_max_window_bits=+9",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; mux",
            "permessage-deflate-x",
        ] {
            assert_eq!(offered(&[offer]), None, "{offer}");
        }
        assert_eq!(
            bits(&["permessage-deflate; client_max_window_bits=8"]),
            Some(15)
        );
        // Autobahn 13.7's list: the first acceptable offer wins.
        assert_eq!(
            bits(&[
                "permessage-deflate; client_no_context_takeover; server_max_window_bits=9, \
                    permessage-deflate; client_no_context_takeover, permessage-deflate"
            ]),
            Some(9)
        );
    }
}
