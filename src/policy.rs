//! Drift decisions: a window's verdict and the per-model state machine
//! (ok → drifting → ok) with hysteresis and a retrain cooldown.
//!
//! Pure and deterministic: the machine moves on window reports only, and its clock is the
//! windows' event time (a window's end), so a replay of the same logs takes the same
//! decisions as the daemon did, and a restart resumes where the checkpoint left it.

use serde::{Deserialize, Serialize};

use crate::config::{duration_or, ModelPolicy};
use crate::stream::time::parse_rfc3339_ms;
use crate::stream::WindowReport;

/// The policy keys the state machine needs, resolved from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub fire_after: u32,
    pub resolve_after: u32,
    /// Event time between two automatic retrain requests, in milliseconds.
    pub cooldown_ms: i64,
    pub critical: Vec<String>,
}

impl Policy {
    /// From a model's policy (with `[defaults]` filled in) and `[retrain] cooldown`, which
    /// stands when the model sets none.
    pub fn from_settings(p: &ModelPolicy, retrain_cooldown: Option<&str>) -> Policy {
        let cooldown = p.cooldown.as_deref().or(retrain_cooldown);
        Policy {
            fire_after: p.fire_after.unwrap_or(1).max(1),
            resolve_after: p.resolve_after.unwrap_or(1).max(1),
            // validated at load: a bad duration never reaches here
            cooldown_ms: duration_or(cooldown, std::time::Duration::ZERO).as_millis() as i64,
            critical: p.critical.clone().unwrap_or_default(),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy { fire_after: 1, resolve_after: 1, cooldown_ms: 0, critical: Vec::new() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftState {
    #[default]
    Ok,
    Drifting,
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
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Too few events, or the window could not be analysed: moves nothing.
    Neutral,
    Clean,
    Drifted {
        severity: Severity,
    },
}

/// The verdict of a window report: drifted when the dataset drifted (by share, or by a
/// critical feature — `window_report` folds those into `dataset_drift`) or when the
/// prediction drifted.
pub fn verdict(report: &WindowReport, policy: &Policy) -> Verdict {
    let Some(r) = &report.report else { return Verdict::Neutral };
    if report.insufficient_events {
        return Verdict::Neutral;
    }
    let prediction = report.prediction_drift == Some(true);
    if !(r.dataset_drift || prediction) {
        return Verdict::Clean;
    }
    let critical = prediction || r.features.iter().any(|f| f.drifted && policy.critical.contains(&f.name));
    Verdict::Drifted { severity: if critical { Severity::Critical } else { Severity::Warning } }
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

/// A model's place in the state machine; survives restarts in the checkpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelPolicyState {
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
}

/// What a window changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    None,
    /// Entered "drifting". `retrain` is false when the cooldown holds it back.
    Fired {
        episode: Episode,
    },
    /// Still drifting (another window of the episode).
    Continued,
    /// Back to "ok".
    Resolved {
        episode: Episode,
    },
}

/// A run id the orchestrators accept as a name: lowercase letters, digits and `-`
/// (Argo's DNS-1123 names are the narrowest), at most 63 characters.
pub fn run_id(model: &str, window_end_ms: i64, kind: &str) -> String {
    let stamp = crate::stream::time::format_rfc3339_ms(window_end_ms);
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
    if slug.len() > room {
        // a hash keeps long names apart once cut
        let h = model.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        slug.truncate(room.saturating_sub(7));
        slug = format!("{}-{:06x}", slug.trim_end_matches('-'), h & 0xff_ffff);
    }
    format!("driftd-{slug}-{kind}-{stamp}")
}

impl ModelPolicyState {
    /// Moves the machine by one window. `retrain_enabled` says whether a retrain target is
    /// configured (the cooldown is only spent on requests made).
    pub fn observe(&mut self, report: &WindowReport, policy: &Policy, retrain_enabled: bool) -> Transition {
        let end_ms = parse_rfc3339_ms(&report.window_end).unwrap_or(0);
        match verdict(report, policy) {
            Verdict::Neutral => {
                if self.state == DriftState::Drifting {
                    Transition::Continued
                } else {
                    Transition::None
                }
            }
            Verdict::Drifted { severity } => {
                self.drifted_in_row += 1;
                self.clean_in_row = 0;
                match self.state {
                    // the severity stays what it was at firing: the receivers that were
                    // told of the episode are the ones told of its end
                    DriftState::Drifting => Transition::Continued,
                    DriftState::Ok if self.drifted_in_row >= policy.fire_after => {
                        let cooling = self.last_retrain_ms.is_some_and(|t| end_ms - t < policy.cooldown_ms);
                        let retrain = retrain_enabled && !cooling;
                        if retrain {
                            self.last_retrain_ms = Some(end_ms);
                        }
                        let episode = Episode {
                            id: run_id(&report.model, end_ms, "drift"),
                            since: report.window_end.clone(),
                            severity,
                            retrain,
                        };
                        self.state = DriftState::Drifting;
                        self.episodes += 1;
                        self.episode = Some(episode.clone());
                        Transition::Fired { episode }
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
                        match self.episode.take() {
                            Some(episode) => Transition::Resolved { episode },
                            None => Transition::None,
                        }
                    }
                    DriftState::Drifting => Transition::Continued,
                    DriftState::Ok => Transition::None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Mode;
    use crate::report::{FeatureReport, Report, Source};
    use crate::stats::{Kind, Outcome, StatTest};
    use crate::stream::time::format_rfc3339_ms;

    const HOUR: i64 = 3_600_000;

    /// A window report ending at `hour`; `drifted` names the features that drifted, out of
    /// a, b, c, d (dataset drift at share >= 0.5).
    fn window(hour: i64, drifted: &[&str], insufficient: bool) -> WindowReport {
        let features: Vec<FeatureReport> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| {
                let d = drifted.contains(n);
                let score = if d { 0.5 } else { 0.01 };
                FeatureReport::new(n, Kind::Numerical, StatTest::Psi, 0.1, Outcome::distance(score), 0.0, 0.0, 10, 10)
            })
            .collect();
        let source = Source { path: "x".into(), rows: 10 };
        let mut report = Report::new(Mode::Native, source.clone(), source, features, Vec::new(), 0.5);
        if insufficient {
            report.dataset_drift = false;
        }
        WindowReport {
            model: "m".into(),
            window_start: format_rfc3339_ms((hour - 1) * HOUR),
            window_end: format_rfc3339_ms(hour * HOUR),
            events: 1000,
            late_events: 0,
            invalid_values: 0,
            insufficient_events: insufficient,
            prediction_drift: None,
            error: None,
            report: Some(report),
        }
    }

    fn run(policy: &Policy, script: &str) -> (String, ModelPolicyState) {
        // D: dataset drift, c: clean, n: too few events, w: one feature (no dataset drift)
        let mut st = ModelPolicyState::default();
        let mut out = String::new();
        for (i, ch) in script.chars().enumerate() {
            let w = match ch {
                'D' => window(i as i64 + 1, &["a", "b", "c"], false),
                'c' => window(i as i64 + 1, &[], false),
                'n' => window(i as i64 + 1, &["a", "b", "c"], true),
                'w' => window(i as i64 + 1, &["a"], false),
                _ => unreachable!(),
            };
            out.push(match st.observe(&w, policy, true) {
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
    fn critical_features_raise_the_severity() {
        let p = Policy { critical: vec!["b".into()], ..Policy::default() };
        assert_eq!(verdict(&window(1, &["a", "c"], false), &p), Verdict::Drifted { severity: Severity::Warning });
        assert_eq!(verdict(&window(1, &["a", "b"], false), &p), Verdict::Drifted { severity: Severity::Critical });
        let mut pred = window(1, &[], false);
        pred.prediction_drift = Some(true);
        assert_eq!(verdict(&pred, &p), Verdict::Drifted { severity: Severity::Critical });
    }

    #[test]
    fn run_ids_are_stable_and_name_safe() {
        let id = run_id("Credit Risk/v2", 1_795_910_400_000, "drift");
        assert_eq!(id, "driftd-credit-risk-v2-drift-20261129t000000z");
        assert_eq!(id, run_id("Credit Risk/v2", 1_795_910_400_000, "drift"));
        let long = run_id(&"x".repeat(200), 0, "manual");
        assert!(long.len() <= 63, "{long}");
        assert_ne!(long, run_id(&"x".repeat(199), 0, "manual"));
        assert!(long.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }
}
