//! The integration tests, one binary (zero2prod's shape): the real binary, the daemon
//! in-process or as a process, and the real components around it (a Tansu broker,
//! Prometheus, Alertmanager, local HTTP receivers, Prefect and Airflow).

mod helpers;

mod actions;
mod architecture;
mod cli;
mod daemon_actions;
mod data_quality;
mod deploy;
mod docs;
mod example_pipelines;
mod faults;
mod fixtures_match;
mod fuzz_regressions;
mod hostile;
mod hot_path_alloc;
mod html_report;
mod http_api;
mod kafka_daemon;
mod kafka_security;
mod monitoring;
mod open_inference;
mod orchestrators;
mod preset_pipelines;
mod presets;
mod properties;
mod references;
mod registry;
mod replicas;
mod secrets;
mod spread;
mod state_disk;
mod stream_replay;
