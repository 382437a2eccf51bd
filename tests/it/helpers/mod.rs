//! What the integration tests share: the binary, free ports and HTTP, inference logs built
//! from `datasets/`, a config builder, the daemon (in-process or as a process), and the
//! real components around it (a Tansu broker, a recording HTTP receiver, Alertmanager).
#![allow(dead_code)]

mod alertmanager;
mod broker;
mod daemon;
mod jenkins;
mod logs;
mod net;
mod receiver;
mod served;
pub mod services;
mod tls;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use alertmanager::Alertmanager;
pub use broker::{produce, produce_each, produce_with_headers, producer, producer_with, Broker};
pub use daemon::{model_toml, replay, replay_with_args, InProcess, Process, TestConfig};
pub use jenkins::JenkinsStandIn;
pub use logs::{analysis_logs, episode_logs, fmt_ms, log_line, reference_csv, rows, sampled_logs, Row, FEATURES};
pub use net::{dechunk, free_port, http, http_get, http_with, metric, wait_until, ADMIN_TOKEN};
pub use receiver::{Receiver, Reply, Request};
pub use served::ServedFile;
pub use tls::{self_signed, TlsProxy};

/// The repository's root: where datasets/, config/ and docs/ are.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A tool `scripts/test` installs: its path from `var`, else where `scripts/test` puts it
/// (under `~/.cache/driftd`).
pub fn tool(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cache/driftd").join(default)
    });
    assert!(path.exists(), "{} not found: run scripts/test, which installs it ({var})", path.display());
    path
}

/// Runs the real binary from the repository's root.
pub fn driftd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftd")).args(args).current_dir(root()).output().expect("driftd runs")
}

/// The window reports in a JSON Lines file (none when it does not exist yet).
pub fn reports(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // the daemon may be appending: a line still being written is left for the next read
    let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
    complete.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Reports by (model, window start); a window reported twice fails the test.
pub fn by_window(reports: &[serde_json::Value]) -> std::collections::BTreeMap<(String, String), serde_json::Value> {
    let mut map = std::collections::BTreeMap::new();
    for r in reports {
        let key = (r["model"].as_str().unwrap().to_string(), r["window_start"].as_str().unwrap().to_string());
        assert!(map.insert(key.clone(), r.clone()).is_none(), "window {key:?} reported twice");
    }
    map
}

/// A stream's windows (a daemon's reports) and a batch's (`replay` of the same events):
/// the same windows, each with the same events, verdicts and features.
pub fn assert_same_windows(stream: &[serde_json::Value], batch: &[serde_json::Value]) {
    let (a, b) = (by_window(stream), by_window(batch));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, x) in &a {
        let y = &b[k];
        for key in ["events", "dataset_drift", "drifted_features", "share_of_drifted_features", "features"] {
            assert_eq!(x[key], y[key], "window {k:?}: {key}");
        }
    }
}
