//! Everything that leaves driftd: the retrain presets (`retrain.rs`), the alert receivers
//! (`alerts.rs`) and the window report sinks (`reports.rs`), each made into calls that
//! `outbound` makes (or lines a `kafka` topic worker produces). Nothing here decides
//! anything: the `actions` hub and the app tell them what to send.

pub mod alerts;
pub mod reports;
pub mod retrain;
