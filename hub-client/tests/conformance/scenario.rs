//! The scenarios file (`clients/conformance/scenarios.json`) as data: every step is one struct
//! with the fields of the whole vocabulary (README next to the file), and a field this runner does
//! not know fails the load, so a new word in the vocabulary is never silently skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub format: u32,
    /// What the file is for (for people).
    #[serde(default, rename = "description")]
    pub _description: String,
    pub defaults: Defaults,
    pub scenarios: Vec<Scenario>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default)]
    pub client_options: BTreeMap<String, Value>,
    #[serde(default)]
    pub hub_env: BTreeMap<String, String>,
    pub step_timeout_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub title: String,
    pub setup: Setup,
    pub steps: Vec<Step>,
    /// Each step as the file writes it (for messages).
    #[serde(skip)]
    pub written: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    #[serde(default)]
    pub redis: bool,
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default)]
    pub hubs: Vec<String>,
    #[serde(default)]
    pub proxies: BTreeMap<String, String>,
    #[serde(default)]
    pub hub_env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    pub sub: String,
    pub name: Option<String>,
    pub ttl_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rejected {
    pub code: String,
    pub count: usize,
    pub maybe_stored: Option<bool>,
}

/// One step: `do` (an action) or `check`, and the fields either uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(rename = "do")]
    pub action: Option<String>,
    pub check: Option<String>,
    pub client: Option<String>,
    pub hub: Option<String>,
    pub room: Option<String>,
    pub tag: Option<String>,
    pub count: Option<usize>,
    pub interval_ms: Option<u64>,
    pub concurrency: Option<usize>,
    pub background: Option<bool>,
    pub via: Option<String>,
    pub token: Option<TokenSpec>,
    pub options: Option<BTreeMap<String, Value>>,
    pub signal: Option<String>,
    pub proxy: Option<String>,
    pub direction: Option<String>,
    pub ms: Option<u64>,
    pub state: Option<String>,
    /// A close code (`wait_state`) or an error code (`publish_rejected`).
    pub code: Option<Value>,
    pub after_last: Option<String>,
    pub up: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub contents: Option<Vec<String>>,
    pub replayed: Option<bool>,
    pub acked: Option<String>,
    pub rejected: Option<Rejected>,
    /// `recovery`: fields an event has; `states`: a state the client was in.
    pub has: Option<Value>,
    pub lacks: Option<Value>,
    pub close_code: Option<u16>,
    pub disconnections_at_least: Option<usize>,
    pub renewed_at_least: Option<usize>,
    pub count_at_least: Option<u64>,
    pub history: Option<u32>,
    /// `subscribe`: leave the room and subscribe anew in one go (its `left` still on its way).
    pub again: Option<bool>,
    /// `subscribe`: from the position this other client kept in the room (a page reloading).
    pub since_from: Option<String>,
    #[serde(rename = "match")]
    pub matches: Option<BTreeMap<String, Value>>,
}

impl Step {
    /// A field the step needs, or an error naming it.
    pub fn need<'a, T>(&'a self, field: &'a Option<T>, name: &str) -> Result<&'a T, String> {
        field
            .as_ref()
            .ok_or_else(|| format!("this step needs \"{name}\""))
    }
}

/// Where the scenarios are: `clients/conformance/scenarios.json` of this repository.
pub fn path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/conformance/scenarios.json")
}

pub fn load() -> Result<File, String> {
    let path = path();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut file: File =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let raw: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    for (s, r) in file
        .scenarios
        .iter_mut()
        .zip(raw["scenarios"].as_array().into_iter().flatten())
    {
        s.written = r["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Value::to_string)
            .collect();
    }
    if file.format != 1 {
        return Err(format!(
            "{}: format {} (this runner reads format 1)",
            path.display(),
            file.format
        ));
    }
    Ok(file)
}
