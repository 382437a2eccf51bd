//! driftd: drift monitoring and auto-retrain for machine-learning models in production.
//!
//! The data flows through the modules in this order (README's "Architecture" draws the
//! tree): a `source` (Kafka, or a file for `replay`) feeds the streaming `pipeline`
//! (decode, route, window, accumulate, close), which compares each closed window with the
//! model's reference using the `offline` analyzer and the `stats` engine; the `policy`
//! judges it, the `actions` hub acts on its decisions through the `sinks`, the `state`
//! keeps what must survive a restart, and `telemetry` tells about all of it. `app` wires
//! the daemon; `commands` are the doors; `config` is read once into typed values.

pub mod actions;
pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod http;
pub mod offline;
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
