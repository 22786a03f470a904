//! What every request handler and session shares: one cloneable value, passed in, never global.

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::config::Settings;
use crate::hub::Hub;
use crate::origin::AllowedOrigins;
use crate::shutdown::Shutdown;

#[derive(Debug, Clone)]
pub struct AppState {
    pub hub: Hub,
    pub bridge: Bridge,
    pub settings: Arc<Settings>,
    pub origins: Arc<AllowedOrigins>,
    pub shutdown: Shutdown,
}
