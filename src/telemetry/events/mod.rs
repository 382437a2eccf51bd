//! One struct per thing that happens, in the manner of vector's `internal_events`: emitting
//! it logs it and counts it in one call, so the logic never names a metric or a label.
//! By the part of the house they tell about: the pipeline (`windows.rs`), the policy and
//! the actions hub (`actions.rs`), Kafka (`kafka.rs`), the references (`reference.rs`),
//! the state directory and the reports (`state.rs`).

use super::Telemetry;

mod actions;
mod kafka;
mod reference;
mod state;
mod windows;
pub use actions::*;
pub use kafka::*;
pub use reference::*;
pub use state::*;
pub use windows::*;

/// The `model_version` label: empty (and so left out of `/metrics`) for pooled traffic.
fn v(version: Option<&str>) -> &str {
    version.unwrap_or("")
}

/// Something that happened, told to the logs and the metrics.
pub trait InternalEvent {
    fn emit(self, t: &Telemetry);
}
