//! Open Inference Protocol (the KServe V2 protocol) messages, JSON or protobuf
//! (`protobuf.rs`): a request's `inputs` or a response's `outputs`, a batch of rows as
//! named tensors, read into columns ([`Batch`]). Where the model, version, request id and time come from besides the body
//! (headers, the Kafka key, the topic's name) is [`Sources`]' to say.
//!
//! Every V2 datatype is taken (`BOOL`, `UINT8`..`UINT64`, `INT8`..`INT64`, `FP16`..`FP64`,
//! `BYTES`); data flat or nested (row-major); `parameters.content_type = "base64"` on a
//! `BYTES` tensor decodes each element. A tensor whose data disagrees with its shape or
//! datatype, tensors of different row counts, an unknown datatype, too many rows: the
//! whole message is refused, never half a batch taken.

use std::fmt;

use base64::Engine as _;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::error::DecodeError;
use super::scratch::Scalar;

mod kserve;
mod protobuf;
pub mod sagemaker;
mod scan;
mod spare;
use crate::time::parse_rfc3339_ms;
pub use spare::Spare;

/// Which half of an inference a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Request => "request",
            Side::Response => "response",
        }
    }
}

/// A tensor's values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Num(Vec<f64>),
    Bool(Vec<bool>),
    Text(Texts),
    /// Values of several kinds, and nulls (V1 rows: `[42, "EU", null]`).
    Mixed(Vec<Scalar<'static>>),
}

/// Strings one after another in one buffer: no allocation per value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Texts {
    buf: String,
    ends: Vec<usize>,
}

impl Texts {
    pub fn with_capacity(n: usize) -> Texts {
        Texts { buf: String::new(), ends: Vec::with_capacity(n) }
    }

    pub fn push(&mut self, s: &str) {
        self.buf.push_str(s);
        self.ends.push(self.buf.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.buf[start..end])
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl<S: AsRef<str>> FromIterator<S> for Texts {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Texts {
        let mut t = Texts::default();
        for s in iter {
            t.push(s.as_ref());
        }
        t
    }
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Num(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Text(v) => v.len(),
            Column::Mixed(v) => v.len(),
        }
    }
}

/// One named tensor: `width` values per row (1 for a column).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub width: usize,
    pub data: Column,
}

/// A request's or a response's rows, and what it says of itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub side: Side,
    pub model: String,
    pub version: Option<String>,
    pub id: Option<String>,
    /// The event time the message gives (`ce_time`), else `None`: the source's stands.
    pub ts_ms: Option<i64>,
    pub rows: usize,
    pub tensors: Vec<Tensor>,
}

/// A message's headers, looked up by name: case and `-`/`_` do not matter (`Ce-Id`,
/// `ce_id` and `ce-id` are one).
pub trait Headers {
    fn header(&self, name: &str) -> Option<&[u8]>;
}

/// No headers (a line of a file).
impl Headers for () {
    fn header(&self, _: &str) -> Option<&[u8]> {
        None
    }
}

/// Whether a header's name is `want` (lower case, `-` between words).
pub fn header_is(name: &str, want: &str) -> bool {
    name.len() == want.len()
        && name.bytes().zip(want.bytes()).all(|(a, b)| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-'))
}

/// What a message carries besides its body.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub topic: Option<&'a str>,
    pub key: Option<&'a [u8]>,
    pub headers: &'a dyn Headers,
    /// `[kafka.topic_models]`'s model for this topic.
    pub topic_model: Option<&'a str>,
}

fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok().map(str::trim).filter(|s| !s.is_empty())
}

impl Sources<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.header(name).and_then(text)
    }

    /// The model: the body's `model_name`, the `mlserver-model` header, the CloudEvents
    /// `ce-modelid` (MLServer) or `ce-inferenceservicename` (KServe's payload logger), a
    /// Seldon Core 2 topic's name, `[kafka.topic_models]`.
    fn model(&self, body: Option<String>) -> Option<String> {
        body.filter(|m| !m.is_empty())
            .or_else(|| self.header("mlserver-model").map(str::to_string))
            .or_else(|| self.header("ce-modelid").map(str::to_string))
            .or_else(|| self.header("ce-inferenceservicename").map(str::to_string))
            .or_else(|| self.topic.and_then(seldon_model).map(str::to_string))
            .or_else(|| self.topic_model.map(str::to_string))
    }

    /// The version: the body's `model_version`, the `mlserver-version` header.
    fn version(&self, body: Option<String>) -> Option<String> {
        body.filter(|v| !v.is_empty()).or_else(|| self.header("mlserver-version").map(str::to_string))
    }

    /// The request id: the Kafka key (MLServer's own rule: the key wins over the body),
    /// the body's `id`, the CloudEvents `ce-requestid`, then `ce-id`.
    fn id(&self, body: Option<String>) -> Option<String> {
        self.key
            .and_then(text)
            .map(str::to_string)
            .or(body.filter(|i| !i.is_empty()))
            .or_else(|| self.header("ce-requestid").map(str::to_string))
            .or_else(|| self.header("ce-id").map(str::to_string))
    }

    /// The event time: the CloudEvents `ce-time`, the body's `parameters.timestamp`;
    /// `None` leaves the message's own timestamp.
    fn time(&self, body: Option<serde_json::Value>) -> Result<Option<i64>, DecodeError> {
        use serde_json::Value;
        match (self.header("ce-time"), body) {
            (Some(t), _) => parse_rfc3339_ms(t).map(Some).ok_or(DecodeError::BadTimestamp),
            (None, Some(Value::String(t))) => parse_rfc3339_ms(&t).map(Some).ok_or(DecodeError::BadTimestamp),
            (None, Some(Value::Number(n))) => match n.as_f64() {
                Some(ms) if ms.is_finite() && ms.abs() < 1e15 => Ok(Some(ms as i64)),
                _ => Err(DecodeError::BadTimestamp),
            },
            (None, None | Some(Value::Null)) => Ok(None),
            (None, Some(_)) => Err(DecodeError::BadTimestamp),
        }
    }
}

/// Where an open-inference topic's messages take their model, version, request id and
/// time from, in order (`driftd config check` says it per topic).
pub fn sources_order(topic: &str, topic_model: Option<&str>) -> String {
    let seldon = seldon_model(topic).map_or(String::new(), |m| format!(", the Seldon topic name (\"{m}\")"));
    let configured = topic_model.map_or(String::new(), |m| format!(", [kafka.topic_models] (\"{m}\")"));
    let side = match protobuf::side_of_last_word(topic) {
        Some(side) => format!("the ce-type header, the topic name (\"{}\")", side.name()),
        None => "the ce-type header, a request's raw_input_contents (the topic name says neither)".to_string(),
    };
    format!(
        "model: the body's model_name, the mlserver-model header, the ce-modelid header, \
         the ce-inferenceservicename header{seldon}{configured}; \
         version: the body's model_version, the mlserver-version header; \
         request id: the Kafka key, the body's id, the ce-requestid header, the ce-id header; \
         time: the ce-time header, the body's parameters.timestamp, the Kafka timestamp; \
         side: the body's inputs or outputs (JSON); {side} (protobuf)"
    )
}

/// The model of a Seldon Core 2 topic, `<prefix>.<namespace>.model.<model>.inputs|outputs`.
pub fn seldon_model(topic: &str) -> Option<&str> {
    let mut parts = topic.rsplit('.');
    let (last, model, word) = (parts.next()?, parts.next()?, parts.next()?);
    (matches!(last, "inputs" | "outputs") && word == "model" && !model.is_empty()).then_some(model)
}

#[derive(Debug, PartialEq, Deserialize, Default)]
struct Body {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model_name: Option<String>,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    inputs: Option<Vec<TensorDe>>,
    #[serde(default)]
    outputs: Option<Vec<TensorDe>>,
    #[serde(default)]
    parameters: Option<BodyParams>,
}

/// The body's `parameters`: a `timestamp` (RFC 3339 or epoch milliseconds) where the
/// producer adds one; the others are the model's business.
#[derive(Debug, PartialEq, Deserialize, Default)]
struct BodyParams {
    #[serde(default)]
    timestamp: Option<serde_json::Value>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct TensorDe {
    name: String,
    #[serde(default)]
    shape: Option<Shape>,
    #[serde(default)]
    datatype: Option<Kind>,
    #[serde(default)]
    parameters: Option<Params>,
    #[serde(default)]
    data: Option<Data>,
}

/// A tensor's shape as a batch needs it, kept without a list: its rows (the first
/// dimension; 1 for a scalar's empty shape) and its width (the product of the others,
/// `None` past `u64`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Shape {
    rows: u64,
    width: Option<u64>,
}

impl Shape {
    fn of(dims: impl IntoIterator<Item = u64>) -> Shape {
        let mut dims = dims.into_iter();
        let rows = dims.next().unwrap_or(1);
        Shape { rows, width: dims.try_fold(1u64, |w, d| w.checked_mul(d)) }
    }

    /// How many values the shape announces (`None` past `u64`).
    fn values(self) -> Option<u64> {
        self.width?.checked_mul(self.rows)
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<u64>::deserialize(d).map(Shape::of)
    }
}

#[derive(Debug, PartialEq, Deserialize, Default)]
struct Params {
    #[serde(default)]
    content_type: Option<String>,
}

/// How deep a tensor's data may nest (a shape has rarely more than 4 dimensions).
const MAX_DEPTH: u8 = 8;

/// A tensor's data, nested lists flattened (row-major): numbers, booleans or strings, one
/// kind throughout.
#[derive(Debug, PartialEq)]
struct Data(Column);

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut col = None;
        d.deserialize_any(Flat { col: &mut col, depth: 0 })?;
        Ok(Data(col.unwrap_or(Column::Num(Vec::new()))))
    }
}

/// Appends the values of a (nested) list to `col`, its kind set by the first value.
struct Flat<'c> {
    col: &'c mut Option<Column>,
    depth: u8,
}

impl Flat<'_> {
    fn push<E: serde::de::Error>(&mut self, v: Value) -> Result<(), E> {
        let col = self.col.get_or_insert_with(|| match v {
            Value::Num(_) => Column::Num(Vec::new()),
            Value::Bool(_) => Column::Bool(Vec::new()),
            Value::Text(_) => Column::Text(Texts::default()),
        });
        match (col, v) {
            (Column::Num(c), Value::Num(x)) => c.push(x),
            (Column::Bool(c), Value::Bool(b)) => c.push(b),
            (Column::Text(c), Value::Text(s)) => c.push(&s),
            _ => return Err(E::custom("a tensor's data mixes kinds of values")),
        }
        Ok(())
    }
}

enum Value {
    Num(f64),
    Bool(bool),
    Text(String),
}

impl<'de> Visitor<'de> for Flat<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of numbers, booleans or strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(serde::de::Error::custom("a tensor nested too deep"));
        }
        let depth = self.depth + 1;
        while seq.next_element_seed(Flat { col: &mut *self.col, depth })?.is_some() {}
        Ok(())
    }
    fn visit_f64<E: serde::de::Error>(mut self, v: f64) -> Result<(), E> {
        self.push(Value::Num(v))
    }
    fn visit_i64<E: serde::de::Error>(mut self, v: i64) -> Result<(), E> {
        self.push(Value::Num(v as f64))
    }
    fn visit_u64<E: serde::de::Error>(mut self, v: u64) -> Result<(), E> {
        self.push(Value::Num(v as f64))
    }
    fn visit_bool<E: serde::de::Error>(mut self, v: bool) -> Result<(), E> {
        self.push(Value::Bool(v))
    }
    fn visit_str<E: serde::de::Error>(mut self, v: &str) -> Result<(), E> {
        self.push(Value::Text(v.to_string()))
    }
    fn visit_string<E: serde::de::Error>(mut self, v: String) -> Result<(), E> {
        self.push(Value::Text(v))
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Flat<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// What a datatype's values are.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Num,
    Bool,
    Bytes,
    /// A datatype the protocol does not define.
    Unknown,
}

fn kind_of(datatype: &str) -> Kind {
    match datatype {
        "BOOL" => Kind::Bool,
        "UINT8" | "UINT16" | "UINT32" | "UINT64" | "INT8" | "INT16" | "INT32" | "INT64" | "FP16" | "FP32" | "FP64"
        | "BF16" => Kind::Num,
        "BYTES" => Kind::Bytes,
        _ => Kind::Unknown,
    }
}

/// A datatype read from its name, without keeping the name.
impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a datatype")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Kind, E> {
                Ok(kind_of(v))
            }
        }
        d.deserialize_str(Name)
    }
}

/// Reads one message: `max_rows` bounds a batch.
/// JSON or protobuf, told apart per message (`protobuf::is_protobuf`); `spare` lends
/// buffers.
pub fn decode(payload: &[u8], src: &Sources<'_>, max_rows: usize, spare: &mut Spare) -> Result<Batch, DecodeError> {
    if protobuf::is_protobuf(payload, src) {
        return match protobuf::body(payload, src) {
            Ok((_, body)) => batch(body, src, max_rows, spare),
            // text that is not protobuf was meant as JSON
            Err(DecodeError::BadProtobuf) if protobuf::looks_like_text(payload) => Err(DecodeError::NotJson),
            Err(e) => Err(e),
        };
    }
    let fast = std::str::from_utf8(payload).ok().and_then(|text| scan::body(text, spare));
    let body = match fast {
        Some(body) => body,
        None => serde_json::from_slice(payload).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => DecodeError::WrongType,
            _ => DecodeError::NotJson,
        })?,
    };
    if body.inputs.is_none() && body.outputs.is_none() {
        // a structured CloudEvent, or a V1 body (KServe's payload logger)
        return kserve::decode_other(payload, src, max_rows, spare);
    }
    batch(body, src, max_rows, spare)
}

/// A V2 body's tensors checked and read into rows: the one set of checks JSON and
/// protobuf share.
fn batch(body: Body, src: &Sources<'_>, max_rows: usize, spare: &mut Spare) -> Result<Batch, DecodeError> {
    let (side, mut tensors) = match (body.inputs, body.outputs) {
        (Some(inputs), _) => (Side::Request, inputs),
        (None, Some(outputs)) => (Side::Response, outputs),
        (None, None) => return Err(DecodeError::WrongType),
    };
    let model = src.model(body.model_name).ok_or(DecodeError::MissingModel)?;
    let mut rows = None;
    let mut out = spare.tensors(tensors.len());
    for t in tensors.drain(..) {
        let (shape, datatype) = match (t.shape, t.datatype) {
            (Some(s), Some(d)) => (s, d),
            _ => return Err(DecodeError::BadTensor),
        };
        if datatype == Kind::Unknown {
            return Err(DecodeError::BadDatatype);
        }
        let kind = datatype;
        let (n, width) = (shape.rows, shape.width.ok_or(DecodeError::BadTensor)?);
        if n > max_rows as u64 {
            return Err(DecodeError::BatchTooLarge);
        }
        let (n, width) = (n as usize, usize::try_from(width).map_err(|_| DecodeError::BadTensor)?);
        if *rows.get_or_insert(n) != n || width == 0 {
            return Err(DecodeError::BadTensor);
        }
        let Some(Data(data)) = t.data else { return Err(DecodeError::BadTensor) };
        let base64 = t.parameters.and_then(|p| p.content_type).is_some_and(|c| c == "base64");
        let data = match (kind, data) {
            (Kind::Num, c @ Column::Num(_)) | (Kind::Bool, c @ Column::Bool(_)) => c,
            // 0 and 1 as booleans, as some clients write them
            (Kind::Bool, Column::Num(v)) if v.iter().all(|x| *x == 0.0 || *x == 1.0) => {
                Column::Bool(v.into_iter().map(|x| x == 1.0).collect())
            }
            (Kind::Bytes, Column::Text(v)) if base64 => Column::Text(
                v.iter()
                    .map(|s| {
                        let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
                        String::from_utf8(bytes).ok()
                    })
                    .collect::<Option<Texts>>()
                    .ok_or(DecodeError::BadBase64)?,
            ),
            (Kind::Bytes, c @ Column::Text(_)) => c,
            _ => return Err(DecodeError::WrongType),
        };
        if n.checked_mul(width) != Some(data.len()) {
            return Err(DecodeError::BadTensor);
        }
        out.push(Tensor { name: t.name, width, data });
    }
    if spare.bodies.len() < Spare::KEEP && tensors.capacity() <= 1024 {
        spare.bodies.push(tensors);
    }
    Ok(Batch {
        side,
        model,
        version: src.version(body.model_version),
        id: src.id(body.id),
        ts_ms: src.time(body.parameters.and_then(|p| p.timestamp))?,
        rows: rows.unwrap_or(0),
        tensors: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers by name, as a Kafka message's.
    pub(super) struct H(pub(super) Vec<(&'static str, &'static str)>);
    impl Headers for H {
        fn header(&self, name: &str) -> Option<&[u8]> {
            self.0.iter().find(|(n, _)| header_is(n, name)).map(|(_, v)| v.as_bytes())
        }
    }

    fn read(payload: &str, headers: &H, key: Option<&str>, topic: Option<&str>) -> Result<Batch, DecodeError> {
        let src = Sources { topic, key: key.map(str::as_bytes), headers, topic_model: None };
        decode(payload.as_bytes(), &src, 100, &mut Spare::default())
    }

    #[test]
    fn an_mlserver_request_and_its_response_read_as_columns() {
        let req = r#"{"inputs": [
            {"name": "age", "shape": [2, 1], "datatype": "FP64", "data": [31.0, 45.5]},
            {"name": "city", "shape": [2], "datatype": "BYTES", "parameters": {"content_type": "str"}, "data": ["Oslo", "Lima"]},
            {"name": "vip", "shape": [2], "datatype": "BOOL", "data": [true, false]}]}"#;
        let h = H(vec![("mlserver-model", "credit")]);
        let b = read(req, &h, Some("r-1"), None).unwrap();
        assert_eq!((b.side, b.model.as_str(), b.id.as_deref(), b.rows), (Side::Request, "credit", Some("r-1"), 2));
        assert_eq!(b.tensors[0].data, Column::Num(vec![31.0, 45.5]));
        assert_eq!(b.tensors[1].data, Column::Text(Texts::from_iter(["Oslo", "Lima"])));
        assert_eq!(b.tensors[2].data, Column::Bool(vec![true, false]));

        let resp = r#"{"model_name": "credit", "model_version": "3", "id": "r-1",
            "outputs": [{"name": "predict", "shape": [2, 2], "datatype": "FP32", "data": [[0.1, 0.9], [0.7, 0.3]]}]}"#;
        let b = read(resp, &H(vec![("Ce-Time", "2026-01-02T03:04:05Z")]), None, None).unwrap();
        assert_eq!((b.side, b.version.as_deref(), b.rows, b.tensors[0].width), (Side::Response, Some("3"), 2, 2));
        assert_eq!(b.ts_ms, parse_rfc3339_ms("2026-01-02T03:04:05Z"));
    }

    #[test]
    fn the_model_comes_from_the_body_headers_or_a_seldon_topic() {
        let body = r#"{"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [3]}]}"#;
        let none = H(vec![]);
        assert_eq!(read(body, &none, None, None), Err(DecodeError::MissingModel));
        let seldon = read(body, &none, None, Some("seldon.prod.model.iris.inputs")).unwrap();
        assert_eq!(seldon.model, "iris");
        assert_eq!(seldon_model("seldon.prod.model.iris.outputs"), Some("iris"));
        assert_eq!(seldon_model("mlserver-input"), None);
        let ce = read(body, &H(vec![("ce_modelid", "m2"), ("ce_id", "e-9")]), None, None).unwrap();
        assert_eq!((ce.model.as_str(), ce.id.as_deref()), ("m2", Some("e-9")));
    }

    #[test]
    fn bad_tensors_refuse_the_whole_message() {
        let h = H(vec![("mlserver-model", "m")]);
        let cases = [
            (
                r#"{"inputs": [{"name": "x", "shape": [3], "datatype": "FP64", "data": [1, 2]}]}"#,
                DecodeError::BadTensor,
            ),
            (
                r#"{"inputs": [{"name": "x", "shape": [2], "datatype": "FP128", "data": [1, 2]}]}"#,
                DecodeError::BadDatatype,
            ),
            (
                r#"{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1, 2]}, {"name": "y", "shape": [1], "datatype": "FP64", "data": [1]}]}"#,
                DecodeError::BadTensor,
            ),
            (
                r#"{"inputs": [{"name": "x", "shape": [101], "datatype": "FP64", "data": []}]}"#,
                DecodeError::BatchTooLarge,
            ),
            (
                r#"{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "parameters": {"content_type": "base64"}, "data": ["%%%"]}]}"#,
                DecodeError::BadBase64,
            ),
            (
                r#"{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1, "a"]}]}"#,
                DecodeError::WrongType,
            ),
            (r#"{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": [1]}]}"#, DecodeError::WrongType),
            (
                r#"{"inputs": [{"name": "x", "shape": [18446744073709551615, 2], "datatype": "FP64", "data": []}]}"#,
                DecodeError::BatchTooLarge,
            ),
            (
                r#"{"inputs": [{"name": "x", "shape": [1, 4294967296, 4294967296], "datatype": "FP64", "data": [1]}]}"#,
                DecodeError::BadTensor,
            ),
            (r#"{"model_name": "m"}"#, DecodeError::WrongType),
            (r#"{"inputs": "#, DecodeError::NotJson),
        ];
        for (body, want) in cases {
            assert_eq!(read(body, &h, None, None).map(|_| ()), Err(want), "{body}");
        }
        let b64 = r#"{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "parameters": {"content_type": "base64"}, "data": ["T3Nsbw=="]}]}"#;
        assert_eq!(read(b64, &h, None, None).unwrap().tensors[0].data, Column::Text(Texts::from_iter(["Oslo"])));
    }
}
