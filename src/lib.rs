//! driftd: drift monitoring and auto-retrain for machine-learning models in production.
//!
//! The data flows through the modules in this order (docs/architecture.md draws the tree,
//! and the layers each module sits in): a `source` (Kafka, or a file for `replay`) feeds the streaming `pipeline`
//! (decode, route, window, accumulate, close), which compares each closed window with the
//! model's reference using the `analysis` core and the `stats` engine; the `policy`
//! judges it, the `actions` hub acts on its decisions through the `sinks`, the `state`
//! keeps what must survive a restart, and `telemetry` tells about all of it. `app` wires
//! the daemon; `commands` are the doors; `config` is read once into typed values. Shared
//! pieces sit in modules of their own: `kafka` (what Kafka clients share), `outbound` (one
//! HTTP call), `health` (whether the consumer hears from its brokers), `fs` (the one
//! synced write).

pub mod actions;
pub mod analysis;
pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod fs;
pub mod health;
pub mod http;
pub mod kafka;
pub mod outbound;
pub mod pipeline;
pub mod policy;
pub mod rand;
pub mod redact;
pub mod reference;
pub mod sinks;
pub mod source;
pub mod state;
pub mod stats;
pub mod telemetry;
pub mod time;
