//! The streaming pipeline, whatever the source: decode → route by model → window →
//! accumulate → (the window closes) → the statistics `analyze` computes, against the
//! model's reference profile, judged by its policy.
//!
//! - `decode/`: a message into reused buffers, bad ones by reason (`scan/` reads the
//!   default layout, `skeleton.rs` remembers its layout from message to message);
//! - `route.rs`: the [`Pipeline`]: routing, closed windows, safe offsets;
//! - `closing.rs`: windows closed outside their events' flow: end of input, idle tracks,
//!   partitions revoked or lost;
//! - `reload.rs`: a reloaded config taken without dropping open windows;
//! - `offsets.rs`: partitions read and the offsets safe to commit;
//! - `batches.rs`: a model server's batches into events: halves offered to the pairer,
//!   taken alone when their time is up, each row routed;
//! - `pair.rs`: Open Inference Protocol requests and responses joined, one event per row;
//! - `spec.rs`: what a model is compared with ([`ModelSpec`]);
//! - `bounds.rs`: a window's place in event time;
//! - `window.rs`: the assigner, the watermark, a model's open windows;
//! - `accumulate.rs`: one window's values;
//! - `close.rs`: a closed window's [`WindowReport`];
//! - `spread.rs` and `merge.rs`: a model whose traffic is spread over partitions held by
//!   several replicas: its windows' parts sent to the partials topic, and merged there.
//!
//! Sources drive it: `source::file` (`driftd replay`) and the daemon's Kafka consumer.

pub mod accumulate;
mod batches;
pub mod bounds;
pub mod close;
mod closing;
pub mod decode;
pub mod merge;
mod model;
pub mod offsets;
mod pair;
mod reload;
pub mod route;
pub mod spec;
pub mod spread;
pub mod window;

pub use bounds::WindowBounds;
pub use close::{report_window, ClosedWindow, WindowReport};
pub use closing::IdleClock;
pub use decode::{DecodeError, Decoded, Decoding, Header, Headers, Message, Scratch};
pub use model::{Idle, Marks, Model, Track};
pub use pair::LaterRows;
pub use route::{Pipeline, Routed};
pub use spec::ModelSpec;
