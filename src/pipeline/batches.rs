//! A model server's batches into events (Open Inference Protocol, SageMaker capture): a
//! request or a response offered to the pairer, joined with its other or left waiting;
//! halves taken alone when their time is up; each row of a batch routed as one event
//! (`route.rs`), its names resolved once for the batch (`pair::RowPlan`).

use std::time::Instant;

use super::decode::{Batch, DecodeError, Side, Spare};
use super::pair::{Held, LaterRows, Offer, RowPlan};
use super::route::{Pipeline, Routed};

impl Pipeline {
    /// A request or a response: joined with its other half if it waits, else left waiting
    /// (or alone, without a request id); halves whose time is up go alone first.
    pub(super) fn take_batch(
        &mut self,
        batch: Box<Batch>,
        source_ts_ms: Option<i64>,
        position: Option<(u32, i64)>,
    ) -> Result<Routed, DecodeError> {
        let model = *self.by_name.get(batch.model.as_str()).ok_or(DecodeError::UnknownModel)?;
        let held = Held { batch, at: position, source_ts_ms };
        let now = self.clock.map_or_else(Instant::now, |(now, _)| now);
        let mut pushed = Vec::new();
        self.pairer.expire(now, &mut pushed);
        let offer = self.pairer.offer(model, held, now, &mut pushed);
        self.take_alone(pushed);
        let events = match offer {
            Offer::Waiting => 0,
            Offer::Alone(h) => {
                let events = match h.batch.side {
                    Side::Request => self.route_rows(model, Some(&h), None),
                    Side::Response => self.route_rows(model, None, Some(&h)),
                };
                self.recycle(h);
                events?
            }
            Offer::Joined { request, response } => {
                let events = self.route_rows(model, Some(&request), Some(&response));
                self.recycle(request);
                self.recycle(response);
                events?
            }
        };
        Ok(Routed { model, track: 0, reread: false, events })
    }

    /// A request and its response in one message: its rows, no pairing.
    pub(super) fn take_whole(
        &mut self,
        request: Box<Batch>,
        response: Option<Box<Batch>>,
        source_ts_ms: Option<i64>,
        position: Option<(u32, i64)>,
    ) -> Result<Routed, DecodeError> {
        let model = *self.by_name.get(request.model.as_str()).ok_or(DecodeError::UnknownModel)?;
        let request = Held { batch: request, at: position, source_ts_ms };
        let response = response.map(|batch| Held { batch, at: position, source_ts_ms });
        let events = self.route_rows(model, Some(&request), response.as_ref());
        self.recycle(request);
        response.into_iter().for_each(|r| self.recycle(r));
        Ok(Routed { model, track: 0, reread: false, events: events? })
    }

    /// A half's buffers, its rows taken, lent to the next messages.
    fn recycle(&self, held: Held) {
        Spare::with(|spare| spare.recycle(*held.batch));
    }

    /// Halves taken without their other: their rows routed, the outcome kept for the
    /// caller (`take_later`).
    pub(super) fn take_alone(&mut self, mut halves: Vec<Held>) {
        // oldest first, each holding its model's windows open until its rows are in
        halves.sort_by_key(Held::ts_ms);
        for h in halves {
            let Some(&model) = self.by_name.get(h.batch.model.as_str()) else { continue };
            self.in_flight = h.ts_ms().map(|ts| (model, ts));
            let result = match h.batch.side {
                Side::Request => self.route_rows(model, Some(&h), None),
                Side::Response => self.route_rows(model, None, Some(&h)),
            };
            if let Err(e) = result {
                self.decode_errors[e.index()] += 1;
            }
            self.later.push(LaterRows { model, result, at: h.at });
            self.recycle(h);
        }
        self.in_flight = None;
    }

    /// The rows of a request, its response, or both joined, one event each: the request's
    /// tensors are the features (a 2-D one named by the model's `input_columns`, else the
    /// reference's columns in order), the response's output the prediction. The first
    /// row refused refuses the message (its rows are alike but for their values).
    fn route_rows(
        &mut self,
        model: usize,
        request: Option<&Held>,
        response: Option<&Held>,
    ) -> Result<u32, DecodeError> {
        let m = &self.models[model];
        let version =
            request.and_then(|h| h.batch.version.as_deref()).or(response.and_then(|h| h.batch.version.as_deref()));
        let wide = request.is_some_and(|h| h.batch.tensors.iter().any(|t| t.width > 1));
        let columns: Vec<String> = match (&m.config.tensors.input_columns, wide) {
            (_, false) => Vec::new(),
            (Some(cols), true) => cols.clone(),
            (None, true) => {
                let spec = version.and_then(|v| m.by_version.get(v)).or(m.shared.as_ref());
                spec.ok_or(DecodeError::NoReference)?
                    .columns()
                    .filter(|c| *c != "prediction")
                    .map(String::from)
                    .collect()
            }
        };
        let ts = request.or(response).and_then(Held::ts_ms);
        let position = request.or(response).and_then(|h| h.at);
        let also = request.and(response).and_then(|h| h.at);
        let mut scratch = std::mem::take(&mut self.scratch);
        let plan = RowPlan::new(
            &mut scratch,
            &columns,
            &m.config.tensors,
            request.map(|h| &*h.batch),
            response.map(|h| &*h.batch),
            version,
        );
        let mut taken = 0u32;
        let mut result = plan.as_ref().map(|_| ()).map_err(|e| *e);
        if let Ok(plan) = &plan {
            for row in 0..plan.rows() {
                plan.fill(&mut scratch, row);
                match self.route(model, ts, &scratch, position, also) {
                    Ok(_) => taken += 1,
                    Err(e) if taken == 0 => {
                        result = Err(e);
                        break;
                    }
                    // rows are alike but for their values: not met, but never dropped unsaid
                    Err(e) => self.decode_errors[e.index()] += 1,
                }
            }
        }
        drop(plan);
        self.scratch = scratch;
        result.map(|()| taken)
    }

    /// Halves whose other did not come within `pair_timeout`: their rows taken alone.
    pub fn expire_pairs(&mut self, now: Instant) {
        let mut out = Vec::new();
        self.pairer.expire(now, &mut out);
        self.take_alone(out);
    }

    /// Rows taken since the last call outside their message's own call.
    pub fn take_later(&mut self) -> Vec<LaterRows> {
        std::mem::take(&mut self.later)
    }

    /// Open Inference Protocol halves: joined, taken alone by side (request, response),
    /// and rows waiting.
    pub fn pairing(&self) -> (u64, [u64; 2], usize) {
        (self.pairer.joined, self.pairer.unpaired, self.pairer.pending_rows())
    }

    /// Reads files in `format` (`replay --format`).
    /// `pair_timeout` counted in event time: for a file replayed (deterministic, whatever
    /// the pace it is read at).
    pub fn pair_by_event_time(&mut self) {
        self.pairer.by_event_time();
    }
}
