//! driftd: drift monitoring and auto-retrain for machine-learning models in production.
//!
//! One statistics engine ([`stats`]) behind every door: the offline `analyze` / `check`
//! commands ([`analyze`]), reference profiles ([`profile`]), and the streaming daemon
//! that builds on them.

pub mod analyze;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dataset;
pub mod demo;
pub mod error;
pub mod metrics;
pub mod profile;
pub mod report;
pub mod server;
pub mod stats;
pub mod stream;
