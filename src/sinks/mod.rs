//! Everything that leaves driftd: outbound HTTP (`http.rs`), Standard Webhooks signing
//! (`webhook.rs`), the retrain presets (`retrain.rs`), the alert receivers (`alerts.rs`)
//! and the window report sinks (`reports.rs`). Nothing here decides anything: the
//! `actions` hub and the app tell them what to send.

pub mod alerts;
pub mod http;
pub mod reports;
pub mod retrain;
pub mod webhook;
