//! What driftd keeps on disk under `[state] dir`: the checkpoint, the retrain outbox and
//! its history, each written through the one synced atomic write, in a directory one
//! driftd holds at a time (`lock.rs`).

pub mod changelog;
pub mod checkpoint;
pub mod lock;
pub mod outbox;

pub use checkpoint::{Checkpoint, CheckpointFile, Loaded};
pub use lock::{LockError, StateLock};
pub use outbox::{Entry, Outbox, Status};
