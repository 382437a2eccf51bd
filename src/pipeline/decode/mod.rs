//! Inference-log messages → the parts the windows need, without allocating on the default
//! layout: the model name and string values borrow from the payload, features are visited
//! in place.
//!
//! - `error.rs`: why a message was not used ([`DecodeError`]), the reasons every path gives;
//! - `scratch.rs`: the buffers a message's values are decoded into ([`Scratch`]);
//! - `scan/`: the default layout read by hand, for the messages it fully understands;
//! - `skeleton.rs`: a layout remembered from message to message, read by comparing bytes;
//! - `json.rs`: the same layout through serde_json (what the scanner declines), and a
//!   mapped layout (`[kafka.mapping]`);
//! - `open_inference/`: Open Inference Protocol requests and responses, a batch of rows
//!   each, for topics `[kafka.formats]` names (its `scan.rs` reads the common body with
//!   the scanner's byte reader, its `protobuf.rs` the V2 gRPC messages).

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::config::{Format, MappingSettings};
use crate::time::parse_rfc3339_ms;

mod error;
mod json;
pub mod open_inference;
mod scan;
mod scratch;
mod skeleton;

pub use error::DecodeError;
use json::{decode_mapped, epoch_ms, full_default, TsDe};
pub use open_inference::{Batch, Headers, Side, Spare};
pub use scratch::{Header, Scalar, Scratch, Val};
pub(in crate::pipeline) use skeleton::names_layout;

/// A message as a source reads it: its bytes, and what comes with them.
pub struct Message<'a, 'h> {
    pub payload: &'a [u8],
    pub topic: Option<&'a str>,
    pub key: Option<&'a [u8]>,
    pub headers: &'h dyn Headers,
}

/// What a message holds: one event in driftd's layout (its values in the scratch), or a
/// batch of rows, one half of inferences that a request and its response make whole.
pub enum Decoded<'a> {
    Event(Header<'a>),
    Batch(Box<Batch>),
    /// A request and its response in one message (SageMaker Data Capture).
    Whole {
        request: Box<Batch>,
        response: Option<Box<Batch>>,
    },
}

/// Decodes the messages of a configuration: its layout, and the model a topic's
/// messages belong to when they name none.
#[derive(Debug, Clone)]
pub struct Decoding {
    pub(super) decoder: Decoder,
    pub(super) topic_models: BTreeMap<String, String>,
    /// Topics whose messages are not in driftd's layout.
    pub(super) formats: BTreeMap<String, Format>,
    /// The format of messages without a topic (`replay --format`).
    pub(super) file_format: Format,
    pub(super) max_batch_rows: usize,
    /// The config's model when it has one only: SageMaker capture records name none.
    pub(super) sole_model: Option<String>,
}

impl Decoding {
    /// The format of `topic`'s messages (a file's without one).
    pub fn format(&self, topic: Option<&str>) -> Format {
        match topic {
            Some(t) => self.formats.get(t).copied().unwrap_or(Format::Driftd),
            None => self.file_format,
        }
    }

    /// Decodes a message in its topic's format: an event's features into `scratch`, or a
    /// batch of rows.
    pub fn decode_message<'a>(
        &'a self,
        m: &Message<'a, '_>,
        scratch: &mut Scratch,
    ) -> Result<Decoded<'a>, DecodeError> {
        match self.format(m.topic) {
            Format::Driftd => self.decode(m.payload, m.topic, scratch).map(Decoded::Event),
            Format::OpenInference => {
                scratch.clear();
                if m.payload.len() > self.decoder.max_bytes {
                    return Err(DecodeError::Oversized);
                }
                let topic_model = m.topic.and_then(|t| self.topic_models.get(t)).map(String::as_str);
                let src = open_inference::Sources { topic: m.topic, key: m.key, headers: m.headers, topic_model };
                open_inference::Spare::with(|spare| open_inference::decode(m.payload, &src, self.max_batch_rows, spare))
                    .map(|b| Decoded::Batch(Box::new(b)))
            }
            Format::SagemakerCapture => {
                scratch.clear();
                if m.payload.len() > self.decoder.max_bytes {
                    return Err(DecodeError::Oversized);
                }
                let topic_model = m.topic.and_then(|t| self.topic_models.get(t)).or(self.sole_model.as_ref());
                let topic_model = topic_model.map(String::as_str);
                let src = open_inference::Sources { topic: m.topic, key: m.key, headers: m.headers, topic_model };
                let (request, response) = open_inference::sagemaker::decode(m.payload, &src, self.max_batch_rows)?;
                Ok(Decoded::Whole { request: Box::new(request), response: response.map(Box::new) })
            }
        }
    }

    /// Decodes `payload`, read from `topic`, its features into `scratch`.
    pub fn decode<'a>(
        &'a self,
        payload: &'a [u8],
        topic: Option<&str>,
        scratch: &mut Scratch,
    ) -> Result<Header<'a>, DecodeError> {
        let default_model = topic.and_then(|t| self.topic_models.get(t)).map(String::as_str);
        self.decoder.decode(payload, default_model, scratch)
    }
}

/// Decodes messages of one layout.
#[derive(Debug, Clone)]
pub struct Decoder {
    mapping: Option<MappingSettings>,
    max_bytes: usize,
}

impl Decoder {
    pub fn new(mapping: &MappingSettings, max_bytes: usize) -> Decoder {
        Decoder { mapping: (!mapping.is_default()).then(|| mapping.clone()), max_bytes }
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Decodes `payload`, its features into `scratch`; `default_model` stands when the
    /// message names none.
    pub fn decode<'a>(
        &self,
        payload: &'a [u8],
        default_model: Option<&'a str>,
        scratch: &mut Scratch,
    ) -> Result<Header<'a>, DecodeError> {
        scratch.clear();
        if payload.len() > self.max_bytes {
            return Err(DecodeError::Oversized);
        }
        let text = std::str::from_utf8(payload).map_err(|_| DecodeError::NotJson)?;
        match &self.mapping {
            None => decode_default(text, default_model, scratch),
            Some(map) => decode_mapped(map, text, default_model, scratch),
        }
    }
}

/// The default layout, in one pass that borrows from the payload.
fn decode_default<'a>(
    text: &'a str,
    default_model: Option<&'a str>,
    scratch: &mut Scratch,
) -> Result<Header<'a>, DecodeError> {
    let raw = match scan::scan(text, scratch) {
        Some(raw) => raw,
        None => {
            scratch.clear();
            full_default(text, scratch)?
        }
    };
    let model = match raw.model {
        Some(m) if !m.is_empty() => m,
        _ => Cow::Borrowed(default_model.ok_or(DecodeError::MissingModel)?),
    };
    let ts_ms = match raw.ts {
        None | Some(TsDe::Null) => None,
        Some(TsDe::Ms(ms)) => Some(epoch_ms(ms)?),
        Some(TsDe::Text(s)) => Some(parse_rfc3339_ms(&s).ok_or(DecodeError::BadTimestamp)?),
    };
    Ok(Header { model, ts_ms })
}

#[cfg(test)]
mod tests;
