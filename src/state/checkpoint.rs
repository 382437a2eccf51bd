//! `checkpoint.json`: what survives a restart of the daemon. Per model (and per version of
//! a model split by version) the marks of its reported windows and its place in the drift
//! state machine, and the reports of windows closed but not yet confirmed in the sinks.
//! The marks and those reports are written together, so a crash after a window closed
//! either re-reads its events (mark not written) or re-publishes its report (mark
//! written), never both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::outbox::Entry;
use crate::fs::write_synced;
use crate::pipeline::Marks;
use crate::policy::DriftTracker;

/// (model, version): a model's track.
pub type TrackKey = (String, Option<String>);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Per model, the marks of its reported windows (pooled traffic).
    #[serde(default)]
    pub models: BTreeMap<String, WindowMark>,
    /// Per model and version, likewise (models split by version).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, BTreeMap<String, WindowMark>>,
    /// Per model, the drift state machine.
    #[serde(default)]
    pub policy: BTreeMap<String, DriftTracker>,
    /// Per model and version, likewise.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version_policy: BTreeMap<String, BTreeMap<String, DriftTracker>>,
    /// Report lines (JSON) to publish before anything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unpublished: Vec<String>,
    /// Per model, its retrain requests not yet delivered (a copy of the outbox's, carried
    /// by the state changelog so that a replica taking the model over delivers them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retrains: BTreeMap<String, Vec<Entry>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowMark {
    /// The end of the last reported event-time window (Unix ms).
    pub closed_upto: i64,
    /// Events before this are late (a reference swap cut the windows there).
    #[serde(default = "no_floor", skip_serializing_if = "is_no_floor")]
    pub floor: i64,
    /// Count windows: per `topic/partition`, the highest offset in a reported window.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reported: BTreeMap<String, i64>,
}

fn no_floor() -> i64 {
    i64::MIN
}

fn is_no_floor(f: &i64) -> bool {
    *f == i64::MIN
}

impl Checkpoint {
    /// The window marks as the pipeline takes them.
    pub fn marks(&self) -> Vec<(String, Option<String>, Marks)> {
        let mark = |w: &WindowMark| Marks {
            closed_upto: w.closed_upto,
            floor: w.floor,
            reported: w
                .reported
                .iter()
                .filter_map(|(tp, offset)| {
                    // topic names hold no '/' (Kafka allows letters, digits, '.', '_', '-')
                    let (topic, partition) = tp.rsplit_once('/')?;
                    Some((topic.to_string(), partition.parse().ok()?, *offset))
                })
                .collect(),
        };
        let pooled = self.models.iter().map(|(m, w)| (m.clone(), None, mark(w)));
        let versions =
            self.versions.iter().flat_map(|(m, vs)| vs.iter().map(move |(v, w)| (m.clone(), Some(v.clone()), mark(w))));
        pooled.chain(versions).collect()
    }

    pub fn with_marks(mut self, marks: Vec<(String, Option<String>, Marks)>) -> Checkpoint {
        for (m, v, mk) in marks {
            let reported = mk.reported.iter().map(|(t, p, o)| (format!("{t}/{p}"), *o)).collect();
            let w = WindowMark { closed_upto: mk.closed_upto, floor: mk.floor, reported };
            match v {
                None => {
                    self.models.insert(m, w);
                }
                Some(v) => {
                    self.versions.entry(m).or_default().insert(v, w);
                }
            }
        }
        self
    }

    /// The drift state machines by track.
    pub fn trackers(&self) -> BTreeMap<TrackKey, DriftTracker> {
        let pooled = self.policy.iter().map(|(m, t)| ((m.clone(), None), t.clone()));
        let versions = self
            .version_policy
            .iter()
            .flat_map(|(m, vs)| vs.iter().map(move |(v, t)| ((m.clone(), Some(v.clone())), t.clone())));
        pooled.chain(versions).collect()
    }

    pub fn with_trackers(mut self, trackers: BTreeMap<TrackKey, DriftTracker>) -> Checkpoint {
        for ((m, v), t) in trackers {
            match v {
                None => {
                    self.policy.insert(m, t);
                }
                Some(v) => {
                    self.version_policy.entry(m).or_default().insert(v, t);
                }
            }
        }
        self
    }
}

impl Checkpoint {
    /// The models it holds anything of.
    pub fn model_names(&self) -> std::collections::BTreeSet<String> {
        let names = self.models.keys().chain(self.versions.keys()).chain(self.policy.keys());
        names.chain(self.version_policy.keys()).chain(self.retrains.keys()).cloned().collect()
    }

    /// One model's part (its marks, drift state and pending retrain requests; not the
    /// unconfirmed reports).
    pub fn of_model(&self, name: &str) -> Checkpoint {
        Checkpoint {
            models: only(&self.models, name),
            versions: only(&self.versions, name),
            policy: only(&self.policy, name),
            version_policy: only(&self.version_policy, name),
            unpublished: Vec::new(),
            retrains: only(&self.retrains, name),
        }
    }

    pub fn with_retrains(mut self, pending: BTreeMap<String, Vec<Entry>>) -> Checkpoint {
        self.retrains = pending;
        self
    }

    /// The pending retrain requests of every model it holds.
    pub fn pending_retrains(&self) -> impl Iterator<Item = &Entry> {
        self.retrains.values().flatten()
    }

    /// Takes another replica's state of a model (`theirs`, from the changelog): window
    /// marks only move forward (a reported window stays reported, whoever reported it);
    /// the drift state is theirs when `newer` (written after this replica's); their
    /// pending retrain requests are added (the outbox queues a run id once).
    pub fn adopt(&mut self, theirs: Checkpoint, newer: bool) {
        for (m, entries) in theirs.retrains {
            self.retrains.entry(m).or_default().extend(entries);
        }
        self.raise_marks(theirs.models, theirs.versions);
        for (m, t) in theirs.policy {
            if newer || !self.policy.contains_key(&m) {
                self.policy.insert(m, t);
            }
        }
        for (m, vs) in theirs.version_policy {
            let mine = self.version_policy.entry(m).or_default();
            for (v, t) in vs {
                if newer || !mine.contains_key(&v) {
                    mine.insert(v, t);
                }
            }
        }
    }

    /// A model's record followed by a newer one of it: the newer's drift state and pending
    /// requests, and the marks of both (a writer whose marks lag, say a replica that had
    /// the model long ago, moves no mark back).
    pub fn follow(&mut self, newer: Checkpoint) {
        self.raise_marks(newer.models, newer.versions);
        self.policy = newer.policy;
        self.version_policy = newer.version_policy;
        self.retrains = newer.retrains;
    }

    fn raise_marks(
        &mut self,
        models: BTreeMap<String, WindowMark>,
        versions: BTreeMap<String, BTreeMap<String, WindowMark>>,
    ) {
        let raise = |mine: &mut WindowMark, t: WindowMark| {
            mine.closed_upto = mine.closed_upto.max(t.closed_upto);
            mine.floor = mine.floor.max(t.floor);
            for (tp, o) in t.reported {
                let e = mine.reported.entry(tp).or_insert(o);
                *e = (*e).max(o);
            }
        };
        for (m, w) in models {
            match self.models.get_mut(&m) {
                Some(mine) => raise(mine, w),
                None => {
                    self.models.insert(m, w);
                }
            }
        }
        for (m, vs) in versions {
            let mine = self.versions.entry(m).or_default();
            for (v, w) in vs {
                match mine.get_mut(&v) {
                    Some(x) => raise(x, w),
                    None => {
                        mine.insert(v, w);
                    }
                }
            }
        }
    }
}

/// The entry of `name` alone.
fn only<V: Clone>(map: &BTreeMap<String, V>, name: &str) -> BTreeMap<String, V> {
    map.get(name).map(|v| BTreeMap::from([(name.to_string(), v.clone())])).unwrap_or_default()
}

/// What reading the checkpoint found.
#[derive(Debug)]
pub enum Loaded {
    /// None yet.
    Fresh,
    Read(Checkpoint),
    /// One that did not parse, moved to `to`.
    SetAside {
        to: PathBuf,
        error: String,
    },
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

    /// The last checkpoint; empty when there is none. One that cannot be read fails (an
    /// I/O error: starting without it would forget every window's mark and episode); one
    /// that does not parse is kept aside, renamed with `.corrupt-<unix ms>`, and said so.
    pub fn read(&self) -> std::io::Result<Loaded> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Fresh),
            Err(e) => return Err(e),
        };
        match serde_json::from_slice(&bytes) {
            Ok(c) => Ok(Loaded::Read(c)),
            Err(e) => {
                let mut aside = self.path.as_os_str().to_owned();
                aside.push(format!(".corrupt-{}", crate::time::now_ms()));
                let aside = PathBuf::from(aside);
                std::fs::rename(&self.path, &aside)?;
                Ok(Loaded::SetAside { to: aside, error: e.to_string() })
            }
        }
    }

    /// The last checkpoint, or an empty one (tests).
    #[cfg(test)]
    pub fn load(&self) -> Checkpoint {
        match self.read().expect("the checkpoint reads") {
            Loaded::Read(c) => c,
            _ => Checkpoint::default(),
        }
    }

    pub fn save(&self, c: &Checkpoint) -> std::io::Result<()> {
        write_synced(&self.path, &serde_json::to_vec(c).expect("the checkpoint serializes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_checkpoint_is_kept_aside_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let file = CheckpointFile::in_dir(dir.path());
        std::fs::write(file.path(), b"{\"marks\": [tru").unwrap();
        let Loaded::SetAside { to, error } = file.read().unwrap() else { panic!("not set aside") };
        assert!(error.contains("line 1"), "{error}");
        assert_eq!(std::fs::read(&to).unwrap(), b"{\"marks\": [tru", "the bytes are kept");
        assert!(matches!(file.read().unwrap(), Loaded::Fresh), "and the next start begins fresh");
    }

    #[test]
    fn a_checkpoint_round_trips_and_reads_older_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = CheckpointFile::in_dir(dir.path());
        assert_eq!(file.load(), Checkpoint::default(), "none yet: empty");
        let marks = vec![
            ("m".to_string(), None, Marks { closed_upto: 42, floor: i64::MIN, reported: vec![("logs".into(), 3, 99)] }),
            ("m".to_string(), Some("2".to_string()), Marks { closed_upto: 7, floor: 5, reported: Vec::new() }),
        ];
        let mut trackers = BTreeMap::new();
        trackers.insert(("m".to_string(), Some("2".to_string())), DriftTracker { episodes: 3, ..Default::default() });
        let c = Checkpoint { unpublished: vec!["{}".into()], ..Default::default() }
            .with_marks(marks.clone())
            .with_trackers(trackers.clone());
        file.save(&c).unwrap();
        assert_eq!(file.load(), c);
        assert_eq!(file.load().marks(), marks);
        assert_eq!(file.load().trackers(), trackers);
        std::fs::write(file.path(), r#"{"models": {"m": {"closed_upto": 7}}}"#).unwrap();
        assert_eq!(
            file.load().marks(),
            [("m".to_string(), None, Marks { closed_upto: 7, floor: i64::MIN, reported: Vec::new() })]
        );
    }

    #[test]
    fn a_stale_record_after_a_newer_one_moves_no_mark_back() {
        let state = |closed_upto: i64, offset: i64, episodes: u64| {
            let marks = vec![(
                "m".to_string(),
                None,
                Marks { closed_upto, floor: i64::MIN, reported: vec![("logs".into(), 0, offset)] },
            )];
            let tracker = DriftTracker { episodes, ..Default::default() };
            Checkpoint::default().with_marks(marks).with_trackers(BTreeMap::from([(("m".to_string(), None), tracker)]))
        };
        // the owner's record, then one by a replica that had the model long ago
        let mut known = state(7_200_000, 900, 2);
        known.follow(state(3_600_000, 400, 1));
        let marks = known.marks();
        assert_eq!(marks[0].2.closed_upto, 7_200_000, "the reported window stays reported");
        assert_eq!(marks[0].2.reported, vec![("logs".to_string(), 0, 900)]);
        assert_eq!(known.trackers()[&("m".to_string(), None)].episodes, 1, "the drift state is the newer record's");
    }
}
