//! Drift decisions: a window's verdict (`min_events`, `critical` and the prediction read
//! here and nowhere else) and the per-model state machine (ok → drifting → ok) with
//! hysteresis and a retrain cooldown.
//!
//! Pure and deterministic: the machine moves on verdicts and window ends only, and its
//! clock is the windows' event time, so a replay of the same logs takes the same decisions
//! as the daemon did, and a restart resumes where the checkpoint left it.

use serde::{Deserialize, Serialize};

use crate::analysis::report::Report;

mod quality;
pub use quality::{QualityFailure, QualityRule, QualityState, QualityTransition};

/// Where an alert stands: what the alerts' decisions (`actions`) tell the receivers
/// (`sinks::alerts`) and the telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Firing,
    Resolved,
    /// Alertmanager's periodic re-send of a firing alert.
    Refresh,
}

/// The name under which the model's output is monitored, like a feature.
pub const PREDICTION: &str = "prediction";

/// A model's decision keys, resolved from the config (`config::ModelConfig::policy`).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Windows with fewer events are reported, never flagged.
    pub min_events: u64,
    /// Features whose drift alone is dataset drift, and makes an episode critical.
    pub critical: Vec<String>,
    /// Drifted windows in a row that start an episode.
    pub fire_after: u32,
    /// Clean windows in a row that end it.
    pub resolve_after: u32,
    /// Event time between two automatic retrain requests, in milliseconds (0: none).
    pub cooldown_ms: i64,
    /// What makes a window's data broken rather than drifted.
    pub quality: QualityRule,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_events: 0,
            critical: Vec::new(),
            fire_after: 1,
            resolve_after: 1,
            cooldown_ms: 0,
            quality: QualityRule::default(),
        }
    }
}

/// How bad a drift episode is: `critical` when a feature listed in `critical` or the
/// prediction drifted, else `warning`. Alert receivers filter on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One window's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verdict {
    /// Too few events, or the window could not be analysed: moves nothing.
    #[default]
    Neutral,
    Clean,
    Drifted {
        severity: Severity,
    },
    /// The data broke the quality rule: neither drifted nor clean for the drift policy.
    BrokenData,
}

/// What the policy made of a window's report.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// Fewer events than `min_events`: the numbers stand, nothing is flagged.
    pub insufficient_events: bool,
    /// Whether the prediction drifted; `None` when it is not monitored.
    pub prediction_drift: Option<bool>,
    /// The features that broke the data-quality rule (none: the data is fine).
    pub quality_failures: Vec<QualityFailure>,
}

impl Policy {
    /// Judges a window of `events` events whose statistics are `report` (absent when the
    /// window could not be analysed; `without_values`: features with no valid value), and
    /// marks the report accordingly: with broken data, or under `min_events`, nothing is
    /// flagged; a drifted critical feature is dataset drift. The data's quality is judged
    /// whatever the window's size.
    pub fn judge(&self, events: u64, report: Option<&mut Report>, without_values: &[(String, f64)]) -> Judgement {
        let insufficient = events < self.min_events;
        let quality_failures = self.quality.failures(report.as_deref(), without_values);
        let broken = !quality_failures.is_empty();
        let Some(r) = report else {
            let verdict = if broken { Verdict::BrokenData } else { Verdict::Neutral };
            return Judgement { verdict, insufficient_events: insufficient, prediction_drift: None, quality_failures };
        };
        if insufficient || broken {
            r.features.iter_mut().for_each(|f| f.drifted = false);
            r.drifted_features = 0;
            r.share_of_drifted_features = 0.0;
            r.dataset_drift = false;
        }
        let critical_drifted = r.features.iter().any(|f| f.drifted && self.critical.contains(&f.name));
        if critical_drifted {
            r.dataset_drift = true;
        }
        let prediction_drift = r.features.iter().find(|f| f.name == PREDICTION).map(|f| f.drifted);
        let prediction = prediction_drift == Some(true);
        let verdict = if broken {
            Verdict::BrokenData
        } else if insufficient {
            Verdict::Neutral
        } else if !(r.dataset_drift || prediction) {
            Verdict::Clean
        } else {
            let severity = if prediction || critical_drifted { Severity::Critical } else { Severity::Warning };
            Verdict::Drifted { severity }
        };
        Judgement { verdict, insufficient_events: insufficient, prediction_drift, quality_failures }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftState {
    #[default]
    Ok,
    Drifting,
}

/// A drift episode: from entering "drifting" to leaving it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// Deterministic for (model, the window that opened the episode): the retrain run id
    /// and idempotency key, the alerts' dedup key.
    pub id: String,
    /// End of the window that made the model drifting (RFC 3339).
    pub since: String,
    pub severity: Severity,
    /// Whether this episode asked for a retrain (false while in cooldown, or without
    /// `[retrain]`).
    pub retrain: bool,
}

impl Episode {
    /// A notice's episode before the transition fills it in.
    pub fn placeholder() -> Episode {
        Episode { id: String::new(), since: String::new(), severity: Severity::Warning, retrain: false }
    }
}

/// A model's place in the state machine; survives restarts in the checkpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DriftTracker {
    pub state: DriftState,
    /// Drifted windows in a row (counts toward `fire_after`).
    pub drifted_in_row: u32,
    /// Clean windows in a row (counts toward `resolve_after`).
    pub clean_in_row: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<Episode>,
    /// Episodes so far.
    pub episodes: u64,
    /// Window end (Unix ms) of the last automatic retrain request: the cooldown's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_retrain_ms: Option<i64>,
    /// The data-quality state: failing while windows break the quality rule.
    #[serde(default, skip_serializing_if = "QualityState::is_fine")]
    pub quality: QualityState,
}

/// Why an episode ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Resolution {
    /// `resolve_after` clean windows in a row.
    Clean,
    /// The model's reference was replaced (a retrained model's, typically): the drift was
    /// against a reference that is no longer the model's.
    ReferenceUpdated {
        /// The registry version of the new reference, when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        digest: String,
    },
    /// The model was taken out of the config (a reload): nobody watches it any more.
    ModelRemoved,
}

impl Resolution {
    pub fn reason(&self) -> &'static str {
        match self {
            Resolution::Clean => "clean",
            Resolution::ReferenceUpdated { .. } => "reference_updated",
            Resolution::ModelRemoved => "model_removed",
        }
    }

    /// A sentence for people (alerts).
    pub fn describe(&self) -> String {
        match self {
            Resolution::Clean => "the traffic is back within the thresholds".into(),
            Resolution::ReferenceUpdated { version: Some(v), .. } => format!("the reference was updated (version {v})"),
            Resolution::ReferenceUpdated { digest, .. } => {
                format!("the reference was updated (digest {})", &digest[..digest.len().min(12)])
            }
            Resolution::ModelRemoved => "the model was removed from driftd's config".into(),
        }
    }
}

/// What a window changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    None,
    /// Entered "drifting". `episode.retrain` is false when the cooldown holds it back.
    Fired {
        episode: Episode,
    },
    /// Still drifting (another window of the episode).
    Continued,
    /// Back to "ok".
    Resolved {
        episode: Episode,
        resolution: Resolution,
    },
}

/// The name a model (or one version of it) goes by in run ids: `model`, or `model-vN`.
pub fn subject(model: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("{model}-v{v}"),
        None => model.to_string(),
    }
}

/// A run id the orchestrators accept as a name: lowercase letters, digits and `-`
/// (Argo's DNS-1123 names are the narrowest), at most 63 characters.
pub fn run_id(model: &str, window_end_ms: i64, kind: &str) -> String {
    let stamp = crate::time::format_rfc3339_ms(window_end_ms);
    let stamp: String = stamp.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
    let mut slug: String = model
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let fixed = "driftd-".len() + 1 + kind.len() + 1 + stamp.len();
    let room = 63usize.saturating_sub(fixed).max(1);
    // a name the slug does not spell exactly (`fraud.v2`, `Fraud-V2` and `fraud-v2` all
    // slug to `fraud-v2`), or one cut to fit, gets a hash of itself: distinct models,
    // distinct run ids (and alert dedup keys)
    if slug != model || slug.len() > room {
        let h = model.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        slug.truncate(room.saturating_sub(7));
        slug = format!("{}-{:06x}", slug.trim_end_matches('-'), h & 0xff_ffff);
    }
    format!("driftd-{slug}-{kind}-{stamp}")
}

impl DriftTracker {
    /// Moves the machine by one window of `model` (its run-id name: see `subject`) ending
    /// at `end_ms` (event time).
    /// `retrain_enabled` says whether a retrain target is configured (the cooldown is only
    /// spent on requests made).
    pub fn observe(
        &mut self,
        model: &str,
        end_ms: i64,
        verdict: Verdict,
        policy: &Policy,
        retrain_enabled: bool,
    ) -> Transition {
        match verdict {
            Verdict::Neutral | Verdict::BrokenData if self.state == DriftState::Drifting => Transition::Continued,
            Verdict::Neutral | Verdict::BrokenData => Transition::None,
            Verdict::Drifted { severity } => {
                self.drifted_in_row += 1;
                self.clean_in_row = 0;
                match self.state {
                    // the severity stays what it was at firing: the receivers that were
                    // told of the episode are the ones told of its end
                    DriftState::Drifting => Transition::Continued,
                    DriftState::Ok if self.drifted_in_row >= policy.fire_after => {
                        self.fire(model, end_ms, severity, policy, retrain_enabled)
                    }
                    DriftState::Ok => Transition::None,
                }
            }
            Verdict::Clean => {
                self.clean_in_row += 1;
                self.drifted_in_row = 0;
                match self.state {
                    DriftState::Drifting if self.clean_in_row >= policy.resolve_after => {
                        self.state = DriftState::Ok;
                        self.episode.take().map_or(Transition::None, |episode| Transition::Resolved {
                            episode,
                            resolution: Resolution::Clean,
                        })
                    }
                    DriftState::Drifting => Transition::Continued,
                    DriftState::Ok => Transition::None,
                }
            }
        }
    }

    /// Moves the data-quality state by one judged window (`failed`: it broke the rule);
    /// windows that could not be judged (too few events, no report) move nothing.
    pub fn observe_quality(&mut self, model: &str, end_ms: i64, failed: Option<bool>) -> QualityTransition {
        let q = &mut self.quality;
        match (failed, q.failing) {
            (Some(true), false) => {
                let (id, since) = (run_id(model, end_ms, "quality"), crate::time::format_rfc3339_ms(end_ms));
                *q = QualityState {
                    failing: true,
                    incident: Some(id.clone()),
                    since: Some(since.clone()),
                    incidents: q.incidents + 1,
                };
                QualityTransition::Failed { id, since }
            }
            (Some(false), true) => {
                q.failing = false;
                let (id, since) = (q.incident.take().unwrap_or_default(), q.since.take().unwrap_or_default());
                QualityTransition::Restored { id, since }
            }
            _ => QualityTransition::None,
        }
    }

    /// The model's reference was replaced: an episode in course ends (the drift was against
    /// the old reference), the windows in a row start again; the cooldown keeps running.
    pub fn reference_updated(&mut self, resolution: Resolution) -> Transition {
        self.drifted_in_row = 0;
        self.clean_in_row = 0;
        if self.state != DriftState::Drifting {
            return Transition::None;
        }
        self.state = DriftState::Ok;
        self.episode.take().map_or(Transition::None, |episode| Transition::Resolved { episode, resolution })
    }

    fn fire(
        &mut self,
        model: &str,
        end_ms: i64,
        severity: Severity,
        policy: &Policy,
        retrain_enabled: bool,
    ) -> Transition {
        let cooling = self.last_retrain_ms.is_some_and(|t| end_ms - t < policy.cooldown_ms);
        let retrain = retrain_enabled && !cooling;
        if retrain {
            self.last_retrain_ms = Some(end_ms);
        }
        let episode = Episode {
            id: run_id(model, end_ms, "drift"),
            since: crate::time::format_rfc3339_ms(end_ms),
            severity,
            retrain,
        };
        self.state = DriftState::Drifting;
        self.episodes += 1;
        self.episode = Some(episode.clone());
        Transition::Fired { episode }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::report::{FeatureReport, Mode, Report, Sample, Source};
    use crate::stats::{Kind, Outcome, StatTest};

    const HOUR: i64 = 3_600_000;

    /// A report in which `drifted` name the features that drifted, out of a, b, c, d
    /// (dataset drift at share >= 0.5).
    fn report(drifted: &[&str]) -> Report {
        let features: Vec<FeatureReport> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| {
                let score = if drifted.contains(n) { 0.5 } else { 0.01 };
                let side = Sample::new(10, 0.0);
                FeatureReport::new(n, Kind::Numerical, StatTest::Psi, 0.1, Outcome::distance(score), side, side)
            })
            .collect();
        let source = Source::new("x".into(), 10);
        Report::new(Mode::Native, source.clone(), source, features, Vec::new(), 0.5)
    }

    fn run(policy: &Policy, script: &str) -> (String, DriftTracker) {
        // D: dataset drift, c: clean, n: too few events, w: one feature (no dataset drift)
        let mut st = DriftTracker::default();
        let mut out = String::new();
        for (i, ch) in script.chars().enumerate() {
            let (drifted, events): (&[&str], u64) = match ch {
                'D' => (&["a", "b", "c"], 1000),
                'c' => (&[], 1000),
                'n' => (&["a", "b", "c"], 10),
                'w' => (&["a"], 1000),
                _ => unreachable!(),
            };
            let policy = Policy { min_events: 100, ..policy.clone() };
            let verdict = policy.judge(events, Some(&mut report(drifted)), &[]).verdict;
            out.push(match st.observe("m", (i as i64 + 1) * HOUR, verdict, &policy, true) {
                Transition::None => '.',
                Transition::Fired { episode } if episode.retrain => 'F',
                Transition::Fired { .. } => 'f',
                Transition::Continued => '~',
                Transition::Resolved { .. } => 'R',
            });
        }
        (out, st)
    }

    #[test]
    fn hysteresis_needs_consecutive_windows() {
        let p = Policy { fire_after: 2, resolve_after: 3, ..Policy::default() };
        // one drifted window between clean ones never fires; two in a row do
        assert_eq!(run(&p, "cDcDc").0, ".....");
        assert_eq!(run(&p, "cDDDc").0, "..F~~");
        // resolving needs three clean in a row; a drifted one resets the count
        assert_eq!(run(&p, "DDccDcccD").0, ".F~~~~~R.");
        // too-few-events windows move nothing either way
        assert_eq!(run(&p, "DnD").0, "..F");
        assert_eq!(run(&p, "DDcncc").0, ".F~~~R");
        // one feature out of four is not dataset drift
        assert_eq!(run(&p, "wwww").0, "....");
    }

    #[test]
    fn cooldown_holds_back_the_retrain_not_the_episode() {
        let p = Policy { fire_after: 1, resolve_after: 1, cooldown_ms: 5 * HOUR, ..Policy::default() };
        // fired at hour 1; second episode at hour 3 is inside 5 h: no retrain; the third at 7 is out
        let (out, st) = run(&p, "DcDcccD");
        assert_eq!(out, "FRfR..F");
        assert_eq!(st.episodes, 3);
        assert_eq!(st.last_retrain_ms, Some(7 * HOUR));
    }

    #[test]
    fn a_new_reference_ends_the_episode_and_the_cooldown_runs_on() {
        let p = Policy { fire_after: 1, resolve_after: 3, cooldown_ms: 24 * HOUR, ..Policy::default() };
        let (out, mut st) = run(&p, "DD");
        assert_eq!(out, "F~");
        let updated = Resolution::ReferenceUpdated { version: Some("2".into()), digest: "abc".into() };
        match st.reference_updated(updated.clone()) {
            Transition::Resolved { resolution, .. } => assert_eq!(resolution, updated),
            other => panic!("{other:?}"),
        }
        assert_eq!((st.state, st.drifted_in_row, st.episode.clone()), (DriftState::Ok, 0, None));
        assert_eq!(st.last_retrain_ms, Some(HOUR), "the cooldown runs on");
        assert_eq!(st.reference_updated(updated), Transition::None, "nothing to end");
        // drifting again within the cooldown: an episode, no retrain
        let verdict = p.judge(1000, Some(&mut report(&["a", "b", "c"])), &[]).verdict;
        assert!(
            matches!(st.observe("m", 5 * HOUR, verdict, &p, true), Transition::Fired { episode } if !episode.retrain)
        );
    }

    #[test]
    fn critical_features_make_dataset_drift_and_raise_the_severity() {
        let p = Policy { critical: vec!["b".into()], ..Policy::default() };
        let drifted = |s| Verdict::Drifted { severity: s };
        assert_eq!(p.judge(10, Some(&mut report(&["a", "c"])), &[]).verdict, drifted(Severity::Warning));
        assert_eq!(p.judge(10, Some(&mut report(&["a", "b"])), &[]).verdict, drifted(Severity::Critical));
        let mut one = report(&["b"]);
        assert_eq!(p.judge(10, Some(&mut one), &[]).verdict, drifted(Severity::Critical));
        assert!(one.dataset_drift, "a drifted critical feature alone is dataset drift");
        assert_eq!(p.judge(10, None, &[]).verdict, Verdict::Neutral);
    }

    #[test]
    fn too_few_events_flag_nothing() {
        let p = Policy { min_events: 100, critical: vec!["a".into()], ..Policy::default() };
        let mut r = report(&["a", "b", "c"]);
        let j = p.judge(99, Some(&mut r), &[]);
        assert_eq!(j.verdict, Verdict::Neutral);
        assert!(j.insufficient_events);
        assert!(!r.dataset_drift && r.drifted_features == 0 && r.features.iter().all(|f| !f.drifted));
    }

    #[test]
    fn the_prediction_drifting_is_critical() {
        let mut r = report(&[]);
        r.features[0].name = PREDICTION.into();
        r.features[0].drifted = true;
        let j = Policy::default().judge(10, Some(&mut r), &[]);
        assert_eq!(j.prediction_drift, Some(true));
        assert_eq!(j.verdict, Verdict::Drifted { severity: Severity::Critical });
    }

    #[test]
    fn broken_data_is_neither_drift_nor_clean() {
        let p = Policy::default();
        let mut r = report(&["a", "b", "c"]);
        r.features[1].current_invalid_share = Some(0.4);
        let j = p.judge(1000, Some(&mut r), &[("d".to_string(), 1.0)]);
        assert_eq!(j.verdict, Verdict::BrokenData);
        let reasons: Vec<_> = j.quality_failures.iter().map(|f| (f.feature.as_str(), f.reason)).collect();
        assert_eq!(reasons, [("d", "no_values"), ("b", "invalid")]);
        assert!(!r.dataset_drift && r.features.iter().all(|f| !f.drifted), "nothing flagged on broken data");
        // every feature without values: no report at all, still broken
        assert_eq!(p.judge(1000, None, &[("a".to_string(), 0.0)]).verdict, Verdict::BrokenData);
        // under the limits: judged as usual
        let mut fine = report(&["a", "b", "c"]);
        fine.features[0].current_invalid_share = Some(0.05);
        assert!(matches!(p.judge(1000, Some(&mut fine), &[]).verdict, Verdict::Drifted { .. }));
        // the drift state machine holds still on broken windows; the quality one moves
        let mut st = DriftTracker::default();
        assert_eq!(st.observe("m", HOUR, Verdict::BrokenData, &p, true), Transition::None);
        assert!(matches!(st.observe_quality("m", HOUR, Some(true)), QualityTransition::Failed { .. }));
        assert_eq!(st.observe_quality("m", 2 * HOUR, Some(true)), QualityTransition::None);
        assert!(matches!(st.observe_quality("m", 3 * HOUR, Some(false)), QualityTransition::Restored { .. }));
        assert_eq!(st.quality.incidents, 1);
    }

    #[test]
    fn run_ids_are_stable_and_name_safe() {
        assert_eq!(run_id(&subject("housing", Some("2")), 0, "drift"), "driftd-housing-v2-drift-19700101t000000z");
        let id = run_id("Credit Risk/v2", 1_795_910_400_000, "drift");
        assert!(id.starts_with("driftd-credit-risk-v2-") && id.ends_with("-drift-20261129t000000z"), "{id}");
        assert_eq!(id, run_id("Credit Risk/v2", 1_795_910_400_000, "drift"));
        // names that slug alike stay apart
        let ids: std::collections::BTreeSet<String> = ["fraud-v2", "fraud.v2", "Fraud-V2", "fraud_v2", "fraud--v2"]
            .iter()
            .map(|m| run_id(m, 0, "drift"))
            .collect();
        assert_eq!(ids.len(), 5, "{ids:?}");
        assert!(ids.contains("driftd-fraud-v2-drift-19700101t000000z"), "a name already in shape is kept: {ids:?}");
        let long = run_id(&"x".repeat(200), 0, "manual");
        assert!(long.len() <= 63, "{long}");
        assert_ne!(long, run_id(&"x".repeat(199), 0, "manual"));
        assert!(long.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }
}
