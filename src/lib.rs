//! driftd: drift monitoring and auto-retrain for machine-learning models in production.
//!
//! One statistics engine ([`stats`]) behind every door: the offline `analyze` / `check`
//! commands ([`analyze`]), reference profiles ([`profile`]), and the streaming daemon
//! that builds on them.

pub mod actions;
pub mod alerts;
pub mod analyze;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dataset;
pub mod delivery;
pub mod demo;
pub mod error;
pub mod metrics;
pub mod outbox;
pub mod policy;
pub mod profile;
pub mod report;
pub mod retrain;
pub mod server;
pub mod stats;
pub mod stream;
pub mod webhook;
