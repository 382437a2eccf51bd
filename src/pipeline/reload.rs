//! A reloaded config taken between two messages: models whose windows fit keep them,
//! the others' open windows are reported as they were, never dropped.

use std::collections::HashMap;

use super::close::ClosedWindow;
use super::merge::PartsClosed;
use super::model::{Marks, Model};
use super::offsets::PartitionTable;
use super::route::Pipeline;

impl Pipeline {
    /// Takes the models of `new` (a reloaded config): a model whose tracks fit (same
    /// windows and features) keeps its open windows and counters under its new thresholds;
    /// the open windows of one that changed, or was removed, are closed and reported as
    /// they were (cut at the newest event), never dropped.
    pub fn reload(&mut self, new: Pipeline) {
        let mut old: HashMap<String, Model> = self.models.drain(..).map(|m| (m.config.name.clone(), m)).collect();
        let mut models = Vec::with_capacity(new.models.len());
        let mut parts = Vec::new();
        for fresh in new.models {
            let before = old.remove(fresh.name());
            models.push(carry_over(before, fresh, &self.partitions, &mut self.closed, &mut parts));
        }
        for (_, mut removed) in old {
            for track in &mut removed.tracks {
                Self::close_track(&mut self.closed, track, |w, c| w.close_all(c));
                track.close_parts(None, &mut parts);
            }
        }
        self.send_closed_parts(parts);
        self.models = models;
        self.by_name = new.by_name;
        self.decoding = new.decoding;
    }
}

/// A reloaded model keeps the tracks of the old one whose windows fit its new spec; the
/// rest have their open windows cut and reported under the old spec, and leave their marks.
fn carry_over(
    old: Option<Model>,
    mut fresh: Model,
    partitions: &PartitionTable,
    closed: &mut Vec<ClosedWindow>,
    parts: &mut PartsClosed,
) -> Model {
    let Some(old) = old else { return fresh };
    fresh.marks = old.marks;
    fresh.previous = old.previous;
    for mut t in old.tracks {
        let spec = match t.version.as_deref().filter(|_| fresh.config.reference.per_version()) {
            Some(v) => fresh.by_version.get(v).cloned(),
            None => fresh.shared.clone(),
        };
        match spec {
            Some(spec) if t.spec.keeps_windows_of(&spec) => {
                t.spec = spec;
                t.slot_cache.clear();
                t.slot_layout = 0;
                fresh.tracks.push(t);
            }
            _ => {
                let shape = t.windows.shape().clone();
                Pipeline::close_track(closed, &mut t, |w, c| w.cut(shape.clone(), c));
                t.close_parts(Some(&shape), parts);
                fresh.remember_spec(t.spec.clone());
                let marks = Marks::of(&t.windows, partitions);
                fresh.marks.insert(t.version, marks);
            }
        }
    }
    fresh
}
