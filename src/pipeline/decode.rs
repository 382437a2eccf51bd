//! Inference-log messages → the parts the windows need, without allocating on the default
//! layout: the model name and string values borrow from the payload, features are visited
//! in place.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::config::MappingSettings;
use crate::time::parse_rfc3339_ms;

pub use super::scratch::{Scalar, Scratch, Val};

/// Why a message was not used. The label is the `reason` of `driftd_decode_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeError {
    Oversized,
    NotJson,
    WrongType,
    MissingModel,
    UnknownModel,
    BadTimestamp,
    MissingTimestamp,
    /// A version beyond the model's `max_live_versions`: counted, not windowed.
    TooManyVersions,
    /// The model (or this version of it) has no reference yet.
    NoReference,
    /// An event time further ahead of the wall clock than the model's `max_future`.
    FutureTimestamp,
    /// A monitored feature named twice in one message (which value would count?).
    DuplicateFeature,
    /// A key of the message's own (`model`, `model_version`, `timestamp`, `prediction`,
    /// `features`) given twice: which model or time would count?
    DuplicateKey,
}

impl DecodeError {
    pub const ALL: [DecodeError; 12] = [
        DecodeError::Oversized,
        DecodeError::NotJson,
        DecodeError::WrongType,
        DecodeError::MissingModel,
        DecodeError::UnknownModel,
        DecodeError::BadTimestamp,
        DecodeError::MissingTimestamp,
        DecodeError::TooManyVersions,
        DecodeError::NoReference,
        DecodeError::FutureTimestamp,
        DecodeError::DuplicateFeature,
        DecodeError::DuplicateKey,
    ];

    /// The reason's place in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn reason(self) -> &'static str {
        match self {
            DecodeError::Oversized => "oversized",
            DecodeError::NotJson => "not_json",
            DecodeError::WrongType => "wrong_type",
            DecodeError::MissingModel => "missing_model",
            DecodeError::UnknownModel => "unknown_model",
            DecodeError::BadTimestamp => "bad_timestamp",
            DecodeError::MissingTimestamp => "missing_timestamp",
            DecodeError::TooManyVersions => "too_many_versions",
            DecodeError::NoReference => "no_reference",
            DecodeError::FutureTimestamp => "future_timestamp",
            DecodeError::DuplicateFeature => "duplicate_feature",
            DecodeError::DuplicateKey => "duplicate_key",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// What a message says besides its features.
pub struct Header<'a> {
    pub model: Cow<'a, str>,
    pub ts_ms: Option<i64>,
}

fn scalar_of(v: &serde_json::Value) -> Option<Scalar<'_>> {
    Some(match v {
        serde_json::Value::Null => Scalar::Null,
        serde_json::Value::Bool(b) => Scalar::Bool(*b),
        serde_json::Value::Number(n) => Scalar::Num(n.as_f64()?),
        serde_json::Value::String(s) => Scalar::Str(Cow::Borrowed(s)),
        _ => return None,
    })
}

/// The features object, read straight into the scratch buffers.
struct FeaturesSeed<'s> {
    scratch: &'s mut Scratch,
}

impl<'de> DeserializeSeed<'de> for FeaturesSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FeaturesSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a flat object of feature values")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
            let value: ScalarDe<'de> = map.next_value()?;
            self.scratch.push(&key, value.0);
        }
        Ok(())
    }
}

/// A scalar that refuses nested values.
struct ScalarDe<'a>(Scalar<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for ScalarDe<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = ScalarDe<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, string, boolean or null")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ScalarDe(Scalar::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ScalarDe(Scalar::Num(v as f64)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ScalarDe(Scalar::Num(v as f64)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(ScalarDe(Scalar::Num(v)))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ScalarDe(Scalar::Str(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ScalarDe(Scalar::Str(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ScalarDe(Scalar::Null))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(ScalarDe(Scalar::Null))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A string that borrows from the payload unless it holds escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// A timestamp as the default layout carries it.
pub(super) enum TsDe<'a> {
    Ms(f64),
    Text(Cow<'a, str>),
    Null,
}

impl<'de: 'a, 'a> Deserialize<'de> for TsDe<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match ScalarDe::deserialize(d)?.0 {
            Scalar::Num(x) => Ok(TsDe::Ms(x)),
            Scalar::Str(s) => Ok(TsDe::Text(s)),
            Scalar::Null => Ok(TsDe::Null),
            Scalar::Bool(_) => Err(serde::de::Error::custom("timestamp")),
        }
    }
}

/// The default layout in one pass: the top-level keys, features into the scratch.
struct MessageSeed<'s> {
    scratch: &'s mut Scratch,
    /// Set when the message gives one of its own keys twice.
    duplicate: &'s std::cell::Cell<bool>,
}

pub(super) struct RawHeader<'a> {
    pub(super) model: Option<Cow<'a, str>>,
    pub(super) ts: Option<TsDe<'a>>,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = RawHeader<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_> {
    type Value = RawHeader<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an inference log object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut header = RawHeader { model: None, ts: None };
        let mut prediction: Option<Scalar<'de>> = None;
        let mut version: Option<Scalar<'de>> = None;
        let mut seen = 0u8;
        while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
            let bit = match key.as_ref() {
                "model" => 1,
                "model_version" => 2,
                "timestamp" => 4,
                "features" => 8,
                "prediction" => 16,
                _ => 0,
            };
            if seen & bit != 0 {
                self.duplicate.set(true);
                return Err(serde::de::Error::custom(format_args!("`{key}` given twice")));
            }
            seen |= bit;
            match key.as_ref() {
                "model" => header.model = map.next_value::<Option<CowStr<'de>>>()?.map(|c| c.0),
                "model_version" => version = Some(map.next_value::<ScalarDe<'de>>()?.0),
                "timestamp" => header.ts = Some(map.next_value::<TsDe<'de>>()?),
                "features" => map.next_value_seed(FeaturesSeed { scratch: &mut *self.scratch })?,
                "prediction" => prediction = Some(map.next_value::<ScalarDe<'de>>()?.0),
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        if let Some(p) = prediction {
            self.scratch.push("prediction", p);
        }
        if let Some(v) = version {
            self.scratch.set_version(v).map_err(|_| serde::de::Error::custom("model_version"))?;
        }
        Ok(header)
    }
}

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
    let raw = match super::scan::scan(text, scratch) {
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

/// The default layout through serde_json: every message the scanner leaves.
pub(super) fn full_default<'a>(text: &'a str, scratch: &mut Scratch) -> Result<RawHeader<'a>, DecodeError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let duplicate = std::cell::Cell::new(false);
    let raw = MessageSeed { scratch, duplicate: &duplicate }.deserialize(&mut de).map_err(|e| {
        if duplicate.get() {
            DecodeError::DuplicateKey
        } else {
            classify(e)
        }
    })?;
    de.end().map_err(classify)?;
    Ok(raw)
}

/// Epoch milliseconds as a message may carry them (a finite number within ±31,000 years).
fn epoch_ms(ms: f64) -> Result<i64, DecodeError> {
    if ms.is_finite() && ms.abs() < 1e15 {
        Ok(ms as i64)
    } else {
        Err(DecodeError::BadTimestamp)
    }
}

/// A mapped layout: field names or JSON pointers into the parsed message.
fn decode_mapped<'a>(
    map: &MappingSettings,
    text: &str,
    default_model: Option<&'a str>,
    scratch: &mut Scratch,
) -> Result<Header<'a>, DecodeError> {
    use serde_json::Value;
    let v: Value = serde_json::from_str(text).map_err(classify)?;
    let get = |path: &str| if path.starts_with('/') { v.pointer(path) } else { v.get(path) };
    let model = match get(&map.model) {
        Some(Value::String(s)) if !s.is_empty() => Cow::Owned(s.clone()),
        Some(Value::Null) | None => Cow::Borrowed(default_model.ok_or(DecodeError::MissingModel)?),
        Some(_) => return Err(DecodeError::WrongType),
    };
    let ts_ms = match get(&map.timestamp) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_rfc3339_ms(s).ok_or(DecodeError::BadTimestamp)?),
        Some(Value::Number(n)) => Some(epoch_ms(n.as_f64().unwrap_or(f64::NAN))?),
        Some(_) => return Err(DecodeError::BadTimestamp),
    };
    match get(&map.features) {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                scratch.push(k, scalar_of(v).ok_or(DecodeError::WrongType)?);
            }
        }
        Some(_) => return Err(DecodeError::WrongType),
    }
    if let Some(p) = get(&map.prediction) {
        scratch.push("prediction", scalar_of(p).ok_or(DecodeError::WrongType)?);
    }
    if let Some(v) = get(&map.model_version) {
        scratch.set_version(scalar_of(v).ok_or(DecodeError::WrongType)?)?;
    }
    Ok(Header { model, ts_ms })
}

fn classify(e: serde_json::Error) -> DecodeError {
    match e.classify() {
        serde_json::error::Category::Data => DecodeError::WrongType,
        _ => DecodeError::NotJson,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> Decoder {
        Decoder::new(&MappingSettings::default(), 1 << 20)
    }

    fn decode(
        d: &Decoder,
        msg: &[u8],
        default: Option<&str>,
    ) -> Result<(String, Option<i64>, Vec<String>), DecodeError> {
        let mut scratch = Scratch::default();
        let h = d.decode(msg, default, &mut scratch)?;
        let feats = scratch
            .iter()
            .map(|(k, v)| match v {
                Val::Text(..) => format!("{k}={}", scratch.text(v)),
                other => format!("{k}={other:?}"),
            })
            .collect();
        Ok((h.model.into_owned(), h.ts_ms, feats))
    }

    #[test]
    fn default_layout_decodes_in_one_pass() {
        let msg = br#"{"model": "credit-risk", "model_version": "7", "timestamp": "2026-11-29T12:00:00Z",
            "request_id": "r-123", "features": {"age": 42, "income": 51000.0, "region": "EU", "vip": true, "x": null},
            "prediction": 0.83, "label": 1}"#;
        let (model, ts, feats) = decode(&decoder(), msg, None).unwrap();
        assert_eq!(model, "credit-risk");
        assert_eq!(ts, Some(1_795_953_600_000));
        assert_eq!(
            feats,
            ["age=Num(42.0)", "income=Num(51000.0)", "region=EU", "vip=Bool(true)", "x=Null", "prediction=Num(0.83)"]
        );
        let mut scratch = Scratch::default();
        let h = decoder().decode(msg, None, &mut scratch).unwrap();
        assert!(matches!(h.model, Cow::Borrowed(_)), "the model name borrows from the payload");
    }

    #[test]
    fn reasons_index_their_place_in_all() {
        assert!(DecodeError::ALL.iter().enumerate().all(|(i, e)| e.index() == i));
    }

    #[test]
    fn bad_messages_have_reasons() {
        let d = decoder();
        assert_eq!(decode(&d, b"not json", None).err(), Some(DecodeError::NotJson));
        assert_eq!(decode(&d, br#"{"model": "m"} trailing"#, None).err(), Some(DecodeError::NotJson));
        assert_eq!(decode(&d, br#"{"features": {}}"#, None).err(), Some(DecodeError::MissingModel));
        assert_eq!(decode(&d, br#"{"model": 5}"#, None).err(), Some(DecodeError::WrongType));
        assert_eq!(decode(&d, br#"[1, 2]"#, None).err(), Some(DecodeError::WrongType));
        assert_eq!(decode(&d, br#"{"model": "m", "timestamp": "noon"}"#, None).err(), Some(DecodeError::BadTimestamp));
        let small = Decoder::new(&MappingSettings::default(), 10);
        assert_eq!(decode(&small, br#"{"model": "abcdefgh"}"#, None).err(), Some(DecodeError::Oversized));
        assert_eq!(
            decode(&d, br#"{"model": "m", "features": {"a": {"nested": 1}}}"#, None).err(),
            Some(DecodeError::WrongType)
        );
        assert_eq!(decode(&d, br#"{"features": {}}"#, Some("fallback")).unwrap().0, "fallback");
        assert_eq!(
            decode(&d, br#"{"model": "m", "timestamp": 1700000000000}"#, None).unwrap().1,
            Some(1_700_000_000_000)
        );
        assert_eq!(decode(&d, br#"{"model": "m\u0031", "features": {"s": "a\"b"}}"#, None).unwrap().2, ["s=a\"b"]);
    }

    #[test]
    fn a_mapping_reads_other_layouts() {
        let mapping = MappingSettings {
            model: "/meta/name".into(),
            timestamp: "ts".into(),
            features: "/inputs".into(),
            prediction: "/output/score".into(),
            model_version: "/meta/rev".into(),
        };
        let d = Decoder::new(&mapping, 1 << 20);
        let (model, ts, feats) =
            decode(&d, br#"{"meta": {"name": "m1"}, "ts": 5, "inputs": {"a": 1}, "output": {"score": 0.5}}"#, None)
                .unwrap();
        assert_eq!(model, "m1");
        assert_eq!(ts, Some(5));
        assert_eq!(feats, ["a=Num(1.0)", "prediction=Num(0.5)"]);
        let mut scratch = Scratch::default();
        d.decode(br#"{"meta": {"name": "m1", "rev": 12}}"#, None, &mut scratch).unwrap();
        assert_eq!(scratch.version(), Some("12"));
    }

    #[test]
    fn a_version_is_text_whether_it_came_as_text_or_a_number() {
        let d = decoder();
        let version = |msg: &[u8]| {
            let mut scratch = Scratch::default();
            d.decode(msg, None, &mut scratch).map(|_| scratch.version().map(str::to_string))
        };
        assert_eq!(version(br#"{"model": "m", "model_version": "7"}"#), Ok(Some("7".into())));
        assert_eq!(version(br#"{"model": "m", "model_version": 7}"#), Ok(Some("7".into())));
        assert_eq!(version(br#"{"model": "m", "model_version": 7.0}"#), Ok(Some("7".into())));
        assert_eq!(version(br#"{"model": "m", "model_version": 2.5}"#), Ok(Some("2.5".into())));
        assert_eq!(version(br#"{"model": "m", "model_version": null}"#), Ok(None));
        assert_eq!(version(br#"{"model": "m"}"#), Ok(None));
        assert_eq!(version(br#"{"model": "m", "model_version": true}"#), Err(DecodeError::WrongType));
    }
}
