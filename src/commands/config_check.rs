//! `driftd config check`: the resolved config, secrets masked, or the first error with
//! its key.

use std::path::Path;

use crate::config::{ConfigError, Settings};

pub fn config_check(file: &Path) -> Result<String, ConfigError> {
    let settings = Settings::load(file)?;
    // valid, but known to fail in a common setup: said on stderr, the exit code stays 0
    for (key, why) in settings.retrain.iter().flat_map(|r| r.warnings()) {
        eprintln!("warning: {key}: {why}");
    }
    // where the check runs is often not where the daemon does: an unset variable is said,
    // and `driftd run` refuses it before loading anything
    for e in settings.unreadable_secrets() {
        eprintln!("warning: {}: {} here (`driftd run` refuses to start without it)", e.key, e.reason);
    }
    Ok(serde_json::to_string_pretty(&settings).expect("settings serialize"))
}
