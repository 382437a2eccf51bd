//! Inference-log messages → the parts the windows need, without allocating on the default
//! layout: the model name and string values borrow from the payload, features are visited
//! in place.
//!
//! - `error.rs`: why a message was not used ([`DecodeError`]), the reasons every path gives;
//! - `scratch.rs`: the buffers a message's values are decoded into ([`Scratch`]);
//! - `scan/`: the default layout read by hand, for the messages it fully understands;
//! - `skeleton.rs`: a layout remembered from message to message, read by comparing bytes;
//! - `json.rs`: the same layout through serde_json (what the scanner declines), and a
//!   mapped layout (`[kafka.mapping]`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::config::MappingSettings;
use crate::time::parse_rfc3339_ms;

mod error;
mod json;
mod scan;
mod scratch;
mod skeleton;

pub use error::DecodeError;
use json::{decode_mapped, epoch_ms, full_default, TsDe};
pub use scratch::{Header, Scalar, Scratch, Val};

/// Decodes the messages of a configuration: its layout, and the model a topic's
/// messages belong to when they name none.
#[derive(Debug)]
pub struct Decoding {
    pub(super) decoder: Decoder,
    pub(super) topic_models: BTreeMap<String, String>,
}

impl Decoding {
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
