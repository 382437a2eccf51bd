//! Inference-log messages → the parts the windows need, without allocating on the default
//! layout: the model name and string values borrow from the payload, features are visited
//! in place.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::time::parse_rfc3339_ms;
use crate::config::MappingSettings;

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
}

impl DecodeError {
    pub const ALL: [DecodeError; 7] = [
        DecodeError::Oversized,
        DecodeError::NotJson,
        DecodeError::WrongType,
        DecodeError::MissingModel,
        DecodeError::UnknownModel,
        DecodeError::BadTimestamp,
        DecodeError::MissingTimestamp,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            DecodeError::Oversized => "oversized",
            DecodeError::NotJson => "not_json",
            DecodeError::WrongType => "wrong_type",
            DecodeError::MissingModel => "missing_model",
            DecodeError::UnknownModel => "unknown_model",
            DecodeError::BadTimestamp => "bad_timestamp",
            DecodeError::MissingTimestamp => "missing_timestamp",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// One feature value as the message carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Num(f64),
    Str(Cow<'a, str>),
    Bool(bool),
    Null,
}

/// The features of a message, visited without collecting them.
pub enum Features<'a> {
    None,
    Raw(&'a RawValue),
    Value(serde_json::Value),
}

/// A decoded message: the model, the event time, the features and the prediction.
pub struct Message<'a> {
    pub model: Cow<'a, str>,
    pub ts_ms: Option<i64>,
    pub features: Features<'a>,
    pub prediction: Option<Scalar<'a>>,
}

impl Features<'_> {
    /// Calls `f` for each (name, value); a nested value makes the message `wrong_type`.
    pub fn for_each(&self, mut f: impl FnMut(&str, Scalar<'_>)) -> Result<(), DecodeError> {
        match self {
            Features::None => Ok(()),
            Features::Raw(raw) => {
                let mut de = serde_json::Deserializer::from_str(raw.get());
                FeatureSeed { f: &mut f }.deserialize(&mut de).map_err(|_| DecodeError::WrongType)
            }
            Features::Value(serde_json::Value::Object(map)) => {
                for (k, v) in map {
                    f(k, scalar_of(v).ok_or(DecodeError::WrongType)?);
                }
                Ok(())
            }
            Features::Value(serde_json::Value::Null) => Ok(()),
            Features::Value(_) => Err(DecodeError::WrongType),
        }
    }
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

struct FeatureSeed<'f, F> {
    f: &'f mut F,
}

impl<'de, F: FnMut(&str, Scalar<'_>)> DeserializeSeed<'de> for FeatureSeed<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(&str, Scalar<'_>)> Visitor<'de> for FeatureSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a flat object of feature values")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let value: ScalarDe<'de> = map.next_value()?;
            (self.f)(&key, value.0);
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

/// The default layout, borrowed from the payload.
#[derive(Deserialize)]
struct DefaultLayout<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    features: Option<&'a RawValue>,
    #[serde(borrow, default)]
    prediction: Option<ScalarDe<'a>>,
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

    /// Decodes `payload`; `default_model` stands when the message names none.
    pub fn decode<'a>(&self, payload: &'a [u8], default_model: Option<&'a str>) -> Result<Message<'a>, DecodeError> {
        if payload.len() > self.max_bytes {
            return Err(DecodeError::Oversized);
        }
        let text = std::str::from_utf8(payload).map_err(|_| DecodeError::NotJson)?;
        match &self.mapping {
            None => {
                let m: DefaultLayout<'a> = serde_json::from_str(text).map_err(classify)?;
                let model = match m.model {
                    Some(m) if !m.is_empty() => m,
                    _ => Cow::Borrowed(default_model.ok_or(DecodeError::MissingModel)?),
                };
                let ts_ms = m.timestamp.map(|raw| timestamp_of_raw(raw.get())).transpose()?.flatten();
                Ok(Message {
                    model,
                    ts_ms,
                    features: m.features.map_or(Features::None, Features::Raw),
                    prediction: m.prediction.map(|p| p.0),
                })
            }
            Some(map) => {
                let v: serde_json::Value = serde_json::from_str(text).map_err(classify)?;
                let get = |path: &str| -> Option<&serde_json::Value> {
                    if path.starts_with('/') {
                        v.pointer(path)
                    } else {
                        v.get(path)
                    }
                };
                let model = match get(&map.model) {
                    Some(serde_json::Value::String(s)) if !s.is_empty() => Cow::Owned(s.clone()),
                    Some(serde_json::Value::Null) | None => {
                        Cow::Borrowed(default_model.ok_or(DecodeError::MissingModel)?)
                    }
                    Some(_) => return Err(DecodeError::WrongType),
                };
                let ts_ms = match get(&map.timestamp) {
                    None | Some(serde_json::Value::Null) => None,
                    Some(t) => timestamp_of_raw(&t.to_string())?,
                };
                let prediction = match get(&map.prediction) {
                    None => None,
                    Some(p) => Some(owned(scalar_of(p).ok_or(DecodeError::WrongType)?)),
                };
                let features = get(&map.features).cloned().map_or(Features::None, Features::Value);
                Ok(Message { model, ts_ms, features, prediction })
            }
        }
    }
}

fn owned(s: Scalar<'_>) -> Scalar<'static> {
    match s {
        Scalar::Num(x) => Scalar::Num(x),
        Scalar::Str(c) => Scalar::Str(Cow::Owned(c.into_owned())),
        Scalar::Bool(b) => Scalar::Bool(b),
        Scalar::Null => Scalar::Null,
    }
}

fn classify(e: serde_json::Error) -> DecodeError {
    match e.classify() {
        serde_json::error::Category::Data => DecodeError::WrongType,
        _ => DecodeError::NotJson,
    }
}

/// A timestamp: RFC 3339 text or epoch milliseconds; null means absent.
fn timestamp_of_raw(raw: &str) -> Result<Option<i64>, DecodeError> {
    let raw = raw.trim();
    if raw == "null" {
        return Ok(None);
    }
    if let Some(s) = raw.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return parse_rfc3339_ms(s).map(Some).ok_or(DecodeError::BadTimestamp);
    }
    let ms: f64 = raw.parse().map_err(|_| DecodeError::BadTimestamp)?;
    if ms.is_finite() && ms.abs() < 1e15 {
        Ok(Some(ms as i64))
    } else {
        Err(DecodeError::BadTimestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> Decoder {
        Decoder::new(&MappingSettings::default(), 1 << 20)
    }

    #[test]
    fn default_layout_decodes_without_copying() {
        let msg = br#"{"model": "credit-risk", "model_version": "7", "timestamp": "2026-11-29T12:00:00Z",
            "request_id": "r-123", "features": {"age": 42, "income": 51000.0, "region": "EU", "vip": true, "x": null},
            "prediction": 0.83, "label": 1}"#;
        let d = decoder();
        let m = d.decode(msg, None).unwrap();
        assert_eq!(m.model, "credit-risk");
        assert!(matches!(m.model, Cow::Borrowed(_)));
        assert_eq!(m.ts_ms, Some(1_795_953_600_000));
        assert_eq!(m.prediction, Some(Scalar::Num(0.83)));
        let mut seen = Vec::new();
        m.features.for_each(|k, v| seen.push((k.to_string(), format!("{v:?}")))).unwrap();
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[2], ("region".into(), "Str(\"EU\")".into()));
    }

    #[test]
    fn bad_messages_have_reasons() {
        let d = decoder();
        assert_eq!(d.decode(b"not json", None).err(), Some(DecodeError::NotJson));
        assert_eq!(d.decode(br#"{"features": {}}"#, None).err(), Some(DecodeError::MissingModel));
        assert_eq!(d.decode(br#"{"model": 5}"#, None).err(), Some(DecodeError::WrongType));
        assert_eq!(d.decode(br#"{"model": "m", "timestamp": "noon"}"#, None).err(), Some(DecodeError::BadTimestamp));
        let small = Decoder::new(&MappingSettings::default(), 10);
        assert_eq!(small.decode(br#"{"model": "abcdefgh"}"#, None).err(), Some(DecodeError::Oversized));
        let m = d.decode(br#"{"model": "m", "features": {"a": {"nested": 1}}}"#, None).unwrap();
        assert_eq!(m.features.for_each(|_, _| {}).err(), Some(DecodeError::WrongType));
        assert_eq!(d.decode(br#"{"features": {}}"#, Some("fallback")).unwrap().model, "fallback");
        assert_eq!(
            d.decode(br#"{"model": "m", "timestamp": 1700000000000}"#, None).unwrap().ts_ms,
            Some(1_700_000_000_000)
        );
    }

    #[test]
    fn a_mapping_reads_other_layouts() {
        let mapping = MappingSettings {
            model: "/meta/name".into(),
            timestamp: "ts".into(),
            features: "/inputs".into(),
            prediction: "/output/score".into(),
        };
        let d = Decoder::new(&mapping, 1 << 20);
        let m = d
            .decode(br#"{"meta": {"name": "m1"}, "ts": 5, "inputs": {"a": 1}, "output": {"score": 0.5}}"#, None)
            .unwrap();
        assert_eq!(m.model, "m1");
        assert_eq!(m.ts_ms, Some(5));
        assert_eq!(m.prediction, Some(Scalar::Num(0.5)));
        let mut n = 0;
        m.features.for_each(|_, _| n += 1).unwrap();
        assert_eq!(n, 1);
    }
}
