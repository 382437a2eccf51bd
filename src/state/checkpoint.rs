//! `checkpoint.json`: what survives a restart of the daemon. Per model the end of its last
//! reported window and its place in the drift state machine, and the reports of windows
//! closed but not yet confirmed in the sinks. The marks and those reports are written
//! together, so a crash after a window closed either re-reads its events (mark not
//! written) or re-publishes its report (mark written), never both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fs::write_synced;
use crate::policy::DriftTracker;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Per model, the end of its last reported event-time window (Unix ms).
    #[serde(default)]
    pub models: BTreeMap<String, WindowMark>,
    /// Per model, the drift state machine.
    #[serde(default)]
    pub policy: BTreeMap<String, DriftTracker>,
    /// Report lines (JSON) to publish before anything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unpublished: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowMark {
    pub closed_upto: i64,
}

impl Checkpoint {
    /// The closed-window marks as the pipeline takes them.
    pub fn marks(&self) -> impl Iterator<Item = (String, i64)> + '_ {
        self.models.iter().map(|(m, w)| (m.clone(), w.closed_upto))
    }

    pub fn with_marks(mut self, marks: Vec<(String, i64)>) -> Checkpoint {
        self.models = marks.into_iter().map(|(m, closed_upto)| (m, WindowMark { closed_upto })).collect();
        self
    }
}

/// Where the checkpoint lives.
#[derive(Debug, Clone)]
pub struct CheckpointFile {
    path: PathBuf,
}

impl CheckpointFile {
    pub fn in_dir(state_dir: &Path) -> CheckpointFile {
        CheckpointFile { path: state_dir.join("checkpoint.json") }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last checkpoint; empty when there is none.
    pub fn load(&self) -> Checkpoint {
        std::fs::read(&self.path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    pub fn save(&self, c: &Checkpoint) -> std::io::Result<()> {
        write_synced(&self.path, &serde_json::to_vec(c).expect("the checkpoint serializes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_and_reads_older_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = CheckpointFile::in_dir(dir.path());
        assert_eq!(file.load(), Checkpoint::default(), "none yet: empty");
        let c = Checkpoint { unpublished: vec!["{}".into()], ..Default::default() }.with_marks(vec![("m".into(), 42)]);
        file.save(&c).unwrap();
        assert_eq!(file.load(), c);
        assert_eq!(file.load().marks().collect::<Vec<_>>(), [("m".to_string(), 42)]);
        std::fs::write(file.path(), r#"{"models": {"m": {"closed_upto": 7}}}"#).unwrap();
        assert_eq!(file.load().models["m"].closed_upto, 7);
    }
}
