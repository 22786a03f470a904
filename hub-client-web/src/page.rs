//! The chat page: the askama template (`templates/index.html`) and what it is rendered with.

use askama::Template;

use crate::config::{HubTarget, Settings};
use crate::error::WebError;
use crate::static_files;

/// Everything the page needs is rendered into attributes, so the page runs no inline script and the
/// Content-Security-Policy can forbid inline script entirely (a second wall behind textContent).
#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexPage<'a> {
    pub title: &'a str,
    pub hub_label: &'a str,
    pub hub_url: &'a str,
    pub reconnect_min_ms: u128,
    pub reconnect_max_ms: u128,
    /// `jwt` when this server signs tokens (the page asks for a name first), `off` otherwise.
    pub auth: &'static str,
    /// Appended to static URLs so a new build is never served from a stale browser cache.
    pub asset_version: &'a str,
}

impl<'a> IndexPage<'a> {
    /// `hub_url`: where this page's WebSocket goes, from [`hub_url_for`].
    pub fn new(settings: &'a Settings, hub_url: &'a str) -> Self {
        IndexPage {
            title: &settings.title,
            hub_label: &settings.hub_label,
            hub_url,
            reconnect_min_ms: settings.reconnect_min.as_millis(),
            reconnect_max_ms: settings.reconnect_max.as_millis(),
            auth: if settings.jwt_secret.is_some() {
                "jwt"
            } else {
                "off"
            },
            asset_version: static_files::VERSION,
        }
    }
}

/// Renders the page for a browser whose WebSocket goes to `hub_url`; an error becomes a 500 through
/// [`WebError::status`].
pub fn render(settings: &Settings, hub_url: &str) -> Result<String, WebError> {
    Ok(IndexPage::new(settings, hub_url).render()?)
}

/// The status page (`templates/status.html`): a shell that `static/status.js` fills from
/// `/status/data`. Nothing about the hubs is rendered here, and no key: the figures come as JSON.
#[derive(Template)]
#[template(path = "status.html")]
pub struct StatusPage<'a> {
    pub title: &'a str,
    pub asset_version: &'a str,
}

pub fn render_status(settings: &Settings) -> Result<String, WebError> {
    Ok(StatusPage {
        title: &settings.title,
        asset_version: static_files::VERSION,
    }
    .render()?)
}

/// The status page's policy: its script and its data come from this origin alone.
pub const STATUS_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The WebSocket URL for a page requested with `Host: host`: the configured override, or
/// `ws://<that host's name>:<hub_port><hub_path>` — the address the user typed to reach this page
/// (localhost, a LAN address, a DNS name) is the address that reaches the hub's published port.
/// `None` when the Host header is missing or not a plain host name or IP address (it is written into
/// the page and its Content-Security-Policy, so nothing else may pass).
pub fn hub_url_for(target: &HubTarget, host: Option<&str>) -> Option<String> {
    match target {
        HubTarget::Fixed(url) => Some(url.clone()),
        HubTarget::PageHost { port, path } => {
            let name = host_name(host?)?;
            Some(format!("ws://{name}:{port}{path}"))
        }
    }
}

/// The host part of a `Host` header value (`name`, `name:port`, `[v6]`, `[v6]:port`), checked.
pub fn host_name(host: &str) -> Option<&str> {
    let (name, port) = if host.starts_with('[') {
        let end = host.find(']')?;
        let inner = &host[1..end];
        let ok = !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        (ok.then_some(&host[..=end])?, &host[end + 1..])
    } else {
        let name = host.split(':').next().unwrap_or("");
        let ok = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        (ok.then_some(name)?, &host[name.len()..])
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok.then_some(name)
}

/// The page's Content-Security-Policy: only this origin for scripts, styles and images, and only
/// this origin plus the page's hub for connections (its URL is checked in `config`, or built from a
/// checked host name by [`hub_url_for`]).
pub fn content_security_policy(hub_url: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self' {hub_url}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}
