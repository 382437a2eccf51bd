//! Messages read through serde_json: the default layout when the scanner declines it
//! (`full_default`, borrowing from the payload), and a mapped layout (`[kafka.mapping]`
//! field names or JSON pointers into the parsed message).

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::error::DecodeError;
use super::scratch::{Header, Scalar, Scratch};
use crate::config::MappingSettings;
use crate::time::parse_rfc3339_ms;

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
pub(super) fn epoch_ms(ms: f64) -> Result<i64, DecodeError> {
    if ms.is_finite() && ms.abs() < 1e15 {
        Ok(ms as i64)
    } else {
        Err(DecodeError::BadTimestamp)
    }
}

/// A mapped layout: field names or JSON pointers into the parsed message.
pub(super) fn decode_mapped<'a>(
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
