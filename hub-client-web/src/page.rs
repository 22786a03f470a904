//! The chat page: the askama template (`templates/index.html`) and what it is rendered with.

use askama::Template;

use crate::config::Settings;
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
    pub fn new(settings: &'a Settings) -> Self {
        IndexPage {
            title: &settings.title,
            hub_label: &settings.hub_label,
            hub_url: &settings.hub_url,
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

/// Renders the page; an error becomes a 500 through [`WebError::status`].
pub fn render(settings: &Settings) -> Result<String, WebError> {
    Ok(IndexPage::new(settings).render()?)
}

/// The page's Content-Security-Policy: only this origin for scripts, styles and images, and only
/// this origin plus the configured hub for connections (the hub URL is validated in `config`).
pub fn content_security_policy(hub_url: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self' {hub_url}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}
