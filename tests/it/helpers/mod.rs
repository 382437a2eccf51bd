//! What the integration tests share: the binary, free ports and HTTP, inference logs built
//! from `datasets/`, a config builder, the daemon (in-process or as a process), and the
//! real components around it (a Tansu broker, a recording HTTP receiver, Alertmanager).
#![allow(dead_code)]

mod alertmanager;
mod broker;
mod daemon;
mod logs;
mod net;
mod receiver;
mod served;
pub mod services;

use std::path::PathBuf;
use std::process::{Command, Output};

pub use alertmanager::Alertmanager;
pub use broker::{produce, producer, Broker};
pub use daemon::{model_toml, replay, InProcess, Process, TestConfig};
pub use logs::{analysis_logs, episode_logs, fmt_ms, log_line, reference_csv, rows, sampled_logs, Row, FEATURES};
pub use net::{dechunk, free_port, http, http_get, metric, wait_until};
pub use receiver::{Receiver, Reply, Request};
pub use served::ServedFile;

/// The repository's root: where datasets/, config/ and docs/ are.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the real binary from the repository's root.
pub fn driftd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftd")).args(args).current_dir(root()).output().expect("driftd runs")
}
