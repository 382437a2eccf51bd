//! `driftd config check`: the resolved config, secrets masked, or the first error with
//! its key.

use std::path::Path;

use crate::config::{ConfigError, Settings};

pub fn config_check(file: &Path) -> Result<String, ConfigError> {
    let settings = Settings::load(file)?;
    Ok(serde_json::to_string_pretty(&settings).expect("settings serialize"))
}
