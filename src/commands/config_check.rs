//! `driftd config check`: the resolved config, secrets masked, or the first error with
//! its key.

use std::path::Path;

use crate::config::{ConfigError, Format, Settings};
use crate::pipeline::decode::open_inference::sources_order;

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
    // where each open-inference topic's messages take their model, version, id and time
    for (topic, format) in &settings.kafka.formats {
        if *format == Format::OpenInference {
            let model = settings.kafka.topic_models.get(topic).map(String::as_str);
            eprintln!("note: {topic} (open-inference): {}", sources_order(topic, model));
        }
    }
    Ok(serde_json::to_string_pretty(&settings).expect("settings serialize"))
}
