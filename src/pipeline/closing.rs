//! Windows closed outside the flow of their events: at the end of input, when a track's
//! traffic went quiet (its version retired), and when the group takes partitions away
//! (revoked: reported now; lost: dropped, their new owner reads them again).

use std::time::Instant;

use super::accumulate::Accumulator;
use super::close::ClosedWindow;
use super::model::{Idle, Marks, Track};
use super::route::Pipeline;
use super::window::ModelWindows;

/// What the idle timeout may go by: whether the consumer hears from its brokers.
#[derive(Debug, Clone, Copy)]
pub struct IdleClock {
    /// The consumer hears from its brokers now (or nothing says otherwise).
    pub receiving: bool,
    /// The last time it did not: a track's silence counts from after it.
    pub gap_seen: Option<Instant>,
}

impl IdleClock {
    /// Silence is quiet producers (a source without a broker to lose: files, tests).
    pub const RECEIVING: IdleClock = IdleClock { receiving: true, gap_seen: None };
}

impl Pipeline {
    pub(super) fn close_track(
        closed: &mut Vec<ClosedWindow>,
        track: &mut Track,
        how: impl FnOnce(&mut ModelWindows, &mut Vec<Accumulator>),
    ) {
        let mut accs = Vec::new();
        how(&mut track.windows, &mut accs);
        closed.extend(accs.into_iter().map(|acc| ClosedWindow {
            spec: track.spec.clone(),
            version: track.version.clone(),
            acc,
            merged: None,
        }));
    }

    /// Closes the windows holding events of these partitions (a rebalance takes them).
    pub fn close_partitions(&mut self, revoked: &[(String, i32)]) {
        let pids: Vec<u32> = revoked.iter().filter_map(|(t, p)| self.partitions.find(t, *p)).collect();
        let mut out = Vec::new();
        self.pairer.take(|h| h.at.is_some_and(|(p, _)| pids.contains(&p)), &mut out);
        self.take_alone(out);
        for (topic, partition) in revoked {
            let Some(pid) = self.partitions.find(topic, *partition) else { continue };
            for track in self.models.iter_mut().flat_map(|m| m.tracks.iter_mut()) {
                Self::close_track(&mut self.closed, track, |w, c| w.close_partition(pid, c));
            }
        }
    }

    /// Drops the open windows holding only events of these partitions (lost: their new
    /// owner reads them again from the committed offset and reports them); those mixing
    /// them with partitions still held are closed and reported, as on a revoke. Returns
    /// how many were dropped.
    pub fn drop_partitions(&mut self, lost: &[(String, i32)]) -> usize {
        let mut dropped = 0;
        for (topic, partition) in lost {
            let Some(pid) = self.partitions.find(topic, *partition) else { continue };
            self.pairer.drop_partition(pid);
            for track in self.models.iter_mut().flat_map(|m| m.tracks.iter_mut()) {
                let mut accs = Vec::new();
                dropped += track.windows.drop_partition(pid, &mut accs);
                self.closed.extend(accs.into_iter().map(|acc| ClosedWindow {
                    spec: track.spec.clone(),
                    version: track.version.clone(),
                    acc,
                    merged: None,
                }));
            }
        }
        dropped
    }

    /// Closes every open window of every model (end of input).
    pub fn close_all(&mut self) {
        let mut out = Vec::new();
        self.pairer.take(|_| true, &mut out);
        self.take_alone(out);
        for track in self.models.iter_mut().flat_map(|m| m.tracks.iter_mut()) {
            Self::close_track(&mut self.closed, track, |w, c| w.close_all(c));
        }
    }

    /// Closes the windows of tracks whose traffic stopped for their `idle_timeout`, and
    /// retires idle versions (their slot frees up; their marks are kept).
    /// Silence while the consumer hears nothing from its brokers (`clock`) is an outage,
    /// not quiet producers: it closes nothing, and a track's silence counts from after it.
    pub fn close_idle(&mut self, now: Instant, clock: IdleClock) -> Vec<Idle> {
        // versions that lost their slot since the last call are told as retired
        let mut idle = std::mem::take(&mut self.evicted);
        if !clock.receiving {
            return idle;
        }
        let mut parts = Vec::new();
        for m in &mut self.models {
            let mut i = 0;
            while i < m.tracks.len() {
                let t = &mut m.tracks[i];
                let quiet = match (t.spec.idle_timeout, t.last_event) {
                    (Some(timeout), Some(last)) => {
                        now.duration_since(last.max(clock.gap_seen.unwrap_or(last))) >= timeout
                    }
                    _ => false,
                };
                let retire = quiet && t.version.is_some();
                if quiet && (t.windows.open_events() > 0 || retire) {
                    Self::close_track(&mut self.closed, t, |w, c| w.close_all(c));
                    let retired = retire.then(|| t.spec.clone());
                    idle.push(Idle { model: m.config.name.clone(), version: t.version.clone(), retired });
                }
                if retire {
                    let mut t = m.tracks.remove(i);
                    t.close_parts(None, &mut parts);
                    m.marks.insert(t.version, Marks::of(&t.windows, &self.partitions));
                    continue;
                }
                i += 1;
            }
        }
        self.send_closed_parts(parts);
        idle
    }
}
