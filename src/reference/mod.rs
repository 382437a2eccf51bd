//! Where references come from and how they change: a file (re-read when its content
//! changes), a URL (refreshed with `If-None-Match`), or the MLflow model registry (the
//! version an alias points at, or each live version its own). Every reference is
//! profiled once and kept in the state directory with its digest (`store.rs`), so a
//! restart does not depend on the registry being up; the watcher (`watch.rs`) polls the
//! sources and hands new references to the daemon, which swaps them in.
//!
//! - the `reference = "..."` value is `config`'s (`ReferenceSource`, read with the
//!   config);
//! - `fetch.rs`: bytes from a file or a URL, and why they could not be had;
//! - `mlflow.rs`: the registry's REST API (aliases, versions, tags, artifacts, run inputs);
//! - `load.rs`: bytes → a profile, checked against the model's features;
//! - `store.rs`: profiles kept under `[state] dir`;
//! - `resolve.rs`: a model's reference now, from its source or the store;
//! - `watch.rs`: the polling task.

mod fetch;
mod load;
mod mlflow;
mod resolve;
mod store;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use crate::config::ReferenceSource;
pub use fetch::FetchError;
pub use load::profile_from;
pub use resolve::Resolver;
pub use store::ReferenceStore;

use crate::analysis::profile::Profile;

/// Which reference a window was compared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceIdentity {
    /// As configured: the path, URL or registry URI.
    pub source: String,
    /// The registry's model version it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// SHA-256 of its bytes, hex.
    pub digest: String,
}

impl ReferenceIdentity {
    /// The digest's first 12 characters: enough to tell references apart in a label.
    pub fn short_digest(&self) -> &str {
        &self.digest[..self.digest.len().min(12)]
    }
}

/// A reference ready to compare windows with.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub identity: ReferenceIdentity,
    pub profile: Arc<Profile>,
}

/// A model's references: one for every version, or one per live version.
#[derive(Debug, Clone, Default)]
pub struct ModelReferences {
    pub shared: Option<Loaded>,
    pub by_version: BTreeMap<String, Loaded>,
    /// Why there is none yet, when there is none.
    pub missing: Option<String>,
    /// The source failed at start (the stored reference stands in, or none).
    pub stale: Option<ReferenceError>,
}

/// Every model's references, from their sources, outside the daemon (`replay`, tests,
/// benches): nothing is kept, and a source that fails is an input error. Not for use
/// inside an async runtime.
pub fn resolve_blocking(
    settings: &crate::config::Settings,
) -> Result<BTreeMap<String, ModelReferences>, crate::error::InputError> {
    use crate::error::InputError;
    let resolver = Resolver::new(settings, None).map_err(|e| InputError::flag(&e.key, e.reason))?;
    let configs = settings.model_configs().map_err(|e| InputError::flag(&e.key, e.reason))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| InputError::flag("runtime", e))?;
    runtime.block_on(resolver.initial(&configs))
}

/// SHA-256 of bytes, hex.
pub fn digest(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a reference could not be had or used: the `reason` of
/// `driftd_reference_errors_total`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReferenceError {
    /// The source did not answer (connection, timeout, 5xx).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The source answered that it has no such thing (alias, version, artifact, file).
    #[error("not found: {0}")]
    NotFound(String),
    /// It came, and is not a dataset or profile driftd can read.
    #[error("unreadable: {0}")]
    Unreadable(String),
    /// It does not hold the features the model monitors.
    #[error("schema mismatch: {0}")]
    SchemaMismatch(String),
}

impl ReferenceError {
    pub fn reason(&self) -> &'static str {
        match self {
            ReferenceError::Unreachable(_) => "unreachable",
            ReferenceError::NotFound(_) => "not_found",
            ReferenceError::Unreadable(_) => "unreadable",
            ReferenceError::SchemaMismatch(_) => "schema_mismatch",
        }
    }

    pub const REASONS: [&'static str; 4] = ["unreachable", "not_found", "unreadable", "schema_mismatch"];
}

impl From<FetchError> for ReferenceError {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::Unreachable(m) => ReferenceError::Unreachable(m),
            FetchError::NotFound(m) => ReferenceError::NotFound(m),
            FetchError::Refused(m) => ReferenceError::Unreadable(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_sha256() {
        // NIST's test vector for "abc"
        assert_eq!(digest(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
