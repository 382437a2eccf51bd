//! Open Inference Protocol messages as protobuf: `inference.ModelInferRequest` and
//! `inference.ModelInferResponse` of the V2 gRPC proto (`grpc_predict_v2.proto`), as
//! Seldon Core 2 writes them to its `<prefix>.<namespace>.model.<model>.inputs|outputs`
//! topics. Read by hand from the wire format (the few fields driftd needs; no generated
//! code, no protobuf crate), into the same body the JSON reader gives, so that one set of
//! checks makes the batch.
//!
//! A tensor's values come from its `contents` (`bool_contents`, `int_contents`, ...,
//! `bytes_contents`) or, when it has none, from the message's next `raw_input_contents` /
//! `raw_output_contents` entry: little-endian values of the datatype's width, `BYTES`
//! elements each after a 4-byte little-endian length (as Triton and MLServer write them).
//!
//! The two messages share their field numbers but for the raw entries (a request's field
//! 7, a response's 6), so the side comes from the message's `ce-type` header, else its
//! topic's name (Seldon's `.inputs`/`.outputs`, or a last word `input(s)`, `request(s)`,
//! `output(s)`, `response(s)`), else a request's raw field; a message none of these tell
//! apart is refused (`unknown_side`).

use serde_json::Value;

use super::{Body, BodyParams, Column, Data, Kind, Params, Shape, Side, Sources, TensorDe, Texts};
use crate::pipeline::decode::DecodeError;

/// How many values one message may declare, whatever its shape says (bounds what a
/// hostile length makes us reserve).
const MAX_RESERVE: usize = 1 << 20;

/// Reads one protobuf message: its side, and the body the JSON reader would give.
pub(super) fn body(payload: &[u8], src: &Sources<'_>) -> Result<(Side, Body), DecodeError> {
    let msg = Message::read(payload).ok_or(DecodeError::BadProtobuf)?;
    let side =
        side_hint(src).or_else(|| (!msg.field7.is_empty()).then_some(Side::Request)).ok_or(DecodeError::UnknownSide)?;
    let raw = match side {
        Side::Request => &msg.field7,
        Side::Response => &msg.field6,
    };
    let mut raw = raw.iter().peekable();
    let mut tensors = Vec::with_capacity(msg.tensors.len());
    for t in &msg.tensors {
        // a negative dimension (-1 as int64) is no size
        if t.shape.iter().any(|&d| d > i64::MAX as u64) {
            return Err(DecodeError::BadTensor);
        }
        let kind = super::kind_of(t.datatype);
        let data = match (t.contents, kind) {
            (_, Kind::Unknown) => Column::Num(Vec::new()),
            (Some(contents), _) => contents_column(contents, kind).ok_or(DecodeError::BadProtobuf)??,
            (None, _) => Column::Num(Vec::new()),
        };
        // a tensor without values (no contents, or empty ones) takes the next raw entry
        let data = match raw.next_if(|_| data.len() == 0) {
            Some(bytes) => raw_column(bytes, t.datatype)?,
            None => data,
        };
        tensors.push(TensorDe {
            name: t.name.to_string(),
            shape: Some(Shape::of(t.shape.iter().copied())),
            datatype: (!t.datatype.is_empty()).then_some(kind),
            parameters: t.content_type.map(|c| Params { content_type: Some(c.to_string()) }),
            data: Some(Data(data)),
        });
    }
    let (inputs, outputs) = match side {
        Side::Request => (Some(tensors), None),
        Side::Response => (None, Some(tensors)),
    };
    let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let body = Body {
        id: text(msg.id),
        model_name: text(msg.model_name),
        model_version: text(msg.model_version),
        inputs,
        outputs,
        parameters: msg.timestamp.map(|t| BodyParams { timestamp: Some(t) }),
    };
    Ok((side, body))
}

/// The side a message's `ce-type` header or its topic's name says.
fn side_hint(src: &Sources<'_>) -> Option<Side> {
    let ce_type = src.header("ce-type").and_then(side_of_last_word);
    ce_type.or_else(|| src.topic.and_then(side_of_last_word))
}

/// The side a name's last word (after a `.`, `-` or `_`) says: `input(s)`, `request(s)`,
/// `output(s)`, `response(s)`.
pub(super) fn side_of_last_word(name: &str) -> Option<Side> {
    match name.rsplit(['.', '-', '_']).next()?.to_ascii_lowercase().as_str() {
        "input" | "inputs" | "request" | "requests" => Some(Side::Request),
        "output" | "outputs" | "response" | "responses" => Some(Side::Response),
        _ => None,
    }
}

/// Whether a message is protobuf rather than JSON: its content type (the `content-type`
/// header, else CloudEvents' `ce-datacontenttype`) where it names one, else its first byte
/// that is not JSON whitespace being anything but `{`.
pub(super) fn is_protobuf(payload: &[u8], src: &Sources<'_>) -> bool {
    let declared = src.header("content-type").or_else(|| src.header("ce-datacontenttype"));
    if let Some(ct) = declared.map(str::to_ascii_lowercase) {
        if ct.contains("json") {
            return false;
        }
        if ct.contains("protobuf") || ct.contains("octet-stream") || ct.contains("grpc") {
            return true;
        }
    }
    payload.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')).is_some_and(|&b| b != b'{')
}

/// Whether bytes that did not parse as protobuf look like text (then they were meant as
/// JSON): printable ASCII or UTF-8 and whitespace only, in the first 64 bytes.
pub(super) fn looks_like_text(payload: &[u8]) -> bool {
    let head = &payload[..payload.len().min(64)];
    // UTF-8, but for a character the cut at 64 bytes splits
    let utf8 = std::str::from_utf8(head).map_or_else(|e| e.error_len().is_none(), |_| true);
    utf8 && head.iter().all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r'))
}

/// One wire-format field's value.
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Fields one after another, each `(number, value)`; `None` at the end, `Some(None)` where
/// the bytes are not protobuf.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Fields<'a> {
        Fields { buf }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first()?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    /// The next field, `Err(())` where the bytes are not protobuf.
    fn next_field(&mut self) -> Result<Option<(u64, Wire<'a>)>, ()> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let tag = self.varint().ok_or(())?;
        let (number, wire) = (tag >> 3, tag & 7);
        if number == 0 {
            return Err(());
        }
        let value = match wire {
            0 => Wire::Varint(self.varint().ok_or(())?),
            1 => Wire::Fixed64(u64::from_le_bytes(self.take(8).ok_or(())?.try_into().map_err(|_| ())?)),
            2 => {
                let n = usize::try_from(self.varint().ok_or(())?).map_err(|_| ())?;
                Wire::Bytes(self.take(n).ok_or(())?)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(self.take(4).ok_or(())?.try_into().map_err(|_| ())?)),
            // groups (3, 4) are in no V2 message
            _ => return Err(()),
        };
        Ok(Some((number, value)))
    }
}

/// Each field of `buf` to `f`; `None` where the bytes are not protobuf or `f` refuses one.
fn each<'a>(buf: &'a [u8], mut f: impl FnMut(u64, Wire<'a>) -> Option<()>) -> Option<()> {
    let mut fields = Fields::new(buf);
    while let Some((number, value)) = fields.next_field().ok()? {
        f(number, value)?;
    }
    Some(())
}

fn utf8(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// What driftd reads of a `ModelInferRequest` or `ModelInferResponse`.
#[derive(Default)]
struct Message<'a> {
    model_name: &'a str,
    model_version: &'a str,
    id: &'a str,
    /// `parameters["timestamp"]`, as text or a number.
    timestamp: Option<Value>,
    tensors: Vec<TensorPb<'a>>,
    /// A request's requested outputs, or a response's raw output contents.
    field6: Vec<&'a [u8]>,
    /// A request's raw input contents.
    field7: Vec<&'a [u8]>,
}

struct TensorPb<'a> {
    name: &'a str,
    datatype: &'a str,
    shape: Vec<u64>,
    content_type: Option<&'a str>,
    contents: Option<&'a [u8]>,
}

impl<'a> Message<'a> {
    fn read(buf: &'a [u8]) -> Option<Message<'a>> {
        let mut m = Message::default();
        each(buf, |number, value| {
            match (number, value) {
                (1, Wire::Bytes(b)) => m.model_name = utf8(b)?,
                (2, Wire::Bytes(b)) => m.model_version = utf8(b)?,
                (3, Wire::Bytes(b)) => m.id = utf8(b)?,
                (4, Wire::Bytes(b)) => {
                    if let Some(("timestamp", p)) = map_entry(b)? {
                        m.timestamp = match p {
                            Param::Text(t) => Some(Value::String(t.to_string())),
                            Param::Int(i) => Some(Value::from(i)),
                            Param::Float(x) => serde_json::Number::from_f64(x).map(Value::Number),
                            Param::Other => None,
                        };
                    }
                }
                (5, Wire::Bytes(b)) => m.tensors.push(TensorPb::read(b)?),
                (6, Wire::Bytes(b)) => m.field6.push(b),
                (7, Wire::Bytes(b)) => m.field7.push(b),
                // a known field in the wrong wire type is not this message
                (1..=7, _) => return None,
                _ => {}
            }
            Some(())
        })?;
        Some(m)
    }
}

impl<'a> TensorPb<'a> {
    fn read(buf: &'a [u8]) -> Option<TensorPb<'a>> {
        let mut t = TensorPb { name: "", datatype: "", shape: Vec::new(), content_type: None, contents: None };
        each(buf, |number, value| {
            match (number, value) {
                (1, Wire::Bytes(b)) => t.name = utf8(b)?,
                (2, Wire::Bytes(b)) => t.datatype = utf8(b)?,
                (3, Wire::Varint(v)) => t.shape.push(v),
                (3, Wire::Bytes(b)) => {
                    let mut packed = Fields::new(b);
                    while !packed.buf.is_empty() {
                        t.shape.push(packed.varint()?);
                    }
                }
                (4, Wire::Bytes(b)) => {
                    if let Some(("content_type", Param::Text(c))) = map_entry(b)? {
                        t.content_type = Some(c);
                    }
                }
                (5, Wire::Bytes(b)) => t.contents = Some(b),
                (1..=5, _) => return None,
                _ => {}
            }
            Some(())
        })?;
        Some(t)
    }
}

/// An `InferParameter`'s value.
enum Param<'a> {
    Text(&'a str),
    Int(i64),
    Float(f64),
    Other,
}

/// A `map<string, InferParameter>` entry: its key and value.
fn map_entry(buf: &[u8]) -> Option<Option<(&str, Param<'_>)>> {
    let (mut key, mut value) = ("", Param::Other);
    each(buf, |number, v| {
        match (number, v) {
            (1, Wire::Bytes(b)) => key = utf8(b)?,
            (2, Wire::Bytes(b)) => value = param(b)?,
            (1 | 2, _) => return None,
            _ => {}
        }
        Some(())
    })?;
    Some(Some((key, value)))
}

fn param(buf: &[u8]) -> Option<Param<'_>> {
    let mut p = Param::Other;
    each(buf, |number, v| {
        p = match (number, v) {
            (2, Wire::Varint(i)) => Param::Int(i as i64),
            (3, Wire::Bytes(b)) => Param::Text(utf8(b)?),
            (4, Wire::Fixed64(x)) => Param::Float(f64::from_bits(x)),
            (5, Wire::Varint(u)) => Param::Float(u as f64),
            _ => Param::Other,
        };
        Some(())
    })?;
    Some(p)
}

/// An `InferTensorContents`' values as a column of `kind`: `None` where it is not
/// protobuf, `Some(Err)` where its values do not fit the datatype (numbers from more than
/// one field, text that is not UTF-8).
fn contents_column(buf: &[u8], kind: Kind) -> Option<Result<Column, DecodeError>> {
    let (mut nums, mut bools, mut texts) = (Vec::new(), Vec::new(), Texts::default());
    let mut numeric_field = None;
    let mut mixed = false;
    let mut not_text = false;
    each(buf, |number, v| {
        if (2..=7).contains(&number) {
            mixed |= *numeric_field.get_or_insert(number) != number;
        }
        match (number, v) {
            (1, Wire::Varint(b)) => bools.push(b != 0),
            (1, Wire::Bytes(b)) => packed_varints(b, |v| bools.push(v != 0))?,
            (2, Wire::Varint(v)) => nums.push(f64::from(v as i32)),
            (2, Wire::Bytes(b)) => packed_varints(b, |v| nums.push(f64::from(v as i32)))?,
            (3, Wire::Varint(v)) => nums.push(v as i64 as f64),
            (3, Wire::Bytes(b)) => packed_varints(b, |v| nums.push(v as i64 as f64))?,
            (4, Wire::Varint(v)) => nums.push(f64::from(v as u32)),
            (4, Wire::Bytes(b)) => packed_varints(b, |v| nums.push(f64::from(v as u32)))?,
            (5, Wire::Varint(v)) => nums.push(v as f64),
            (5, Wire::Bytes(b)) => packed_varints(b, |v| nums.push(v as f64))?,
            (6, Wire::Fixed32(x)) => nums.push(f64::from(f32::from_bits(x))),
            (6, Wire::Bytes(b)) => fixed(b, 4, |x| nums.push(f64::from(f32::from_le_bytes(x.try_into().unwrap()))))?,
            (7, Wire::Fixed64(x)) => nums.push(f64::from_bits(x)),
            (7, Wire::Bytes(b)) => fixed(b, 8, |x| nums.push(f64::from_le_bytes(x.try_into().unwrap())))?,
            (8, Wire::Bytes(b)) => match utf8(b) {
                Some(s) => texts.push(s),
                None => not_text = true,
            },
            (1..=8, _) => return None,
            _ => {}
        }
        Some(())
    })?;
    if mixed || not_text {
        return Some(Err(DecodeError::WrongType));
    }
    Some(Ok(match kind {
        Kind::Bool if nums.is_empty() => Column::Bool(bools),
        Kind::Bytes => Column::Text(texts),
        // the shared checks refuse what does not fit (numbers as booleans but 0 and 1)
        _ if !bools.is_empty() => Column::Bool(bools),
        _ if !texts.is_empty() => Column::Text(texts),
        _ => Column::Num(nums),
    }))
}

/// Packed varints, each to `f`.
fn packed_varints(buf: &[u8], mut f: impl FnMut(u64)) -> Option<()> {
    let mut packed = Fields::new(buf);
    while !packed.buf.is_empty() {
        f(packed.varint()?);
    }
    Some(())
}

/// Packed fixed-width values, each to `f`.
fn fixed(buf: &[u8], width: usize, f: impl FnMut(&[u8])) -> Option<()> {
    if !buf.len().is_multiple_of(width) {
        return None;
    }
    buf.chunks_exact(width).for_each(f);
    Some(())
}

/// A raw contents entry as a column of `datatype`: little-endian values, `BYTES` elements
/// each after a 4-byte little-endian length. A length that is no whole number of values
/// is a bad tensor.
fn raw_column(buf: &[u8], datatype: &str) -> Result<Column, DecodeError> {
    let width = match datatype {
        "BOOL" | "UINT8" | "INT8" => 1,
        "UINT16" | "INT16" | "FP16" | "BF16" => 2,
        "UINT32" | "INT32" | "FP32" => 4,
        "UINT64" | "INT64" | "FP64" => 8,
        "BYTES" => return raw_bytes(buf),
        _ => return Err(DecodeError::BadDatatype),
    };
    if !buf.len().is_multiple_of(width) {
        return Err(DecodeError::BadTensor);
    }
    let values = buf.chunks_exact(width);
    if datatype == "BOOL" {
        return Ok(Column::Bool(values.map(|b| b[0] != 0).collect()));
    }
    let num = |b: &[u8]| -> f64 {
        let mut le = [0u8; 8];
        le[..b.len()].copy_from_slice(b);
        let u = u64::from_le_bytes(le);
        match datatype {
            "UINT8" | "UINT16" | "UINT32" | "UINT64" => u as f64,
            "INT8" => f64::from(u as u8 as i8),
            "INT16" => f64::from(u as u16 as i16),
            "INT32" => f64::from(u as u32 as i32),
            "INT64" => u as i64 as f64,
            "FP16" => f16(u as u16),
            "BF16" => f64::from(f32::from_bits((u as u32) << 16)),
            "FP32" => f64::from(f32::from_bits(u as u32)),
            _ => f64::from_bits(u),
        }
    };
    Ok(Column::Num(values.map(num).collect()))
}

/// `BYTES` elements, each after its 4-byte little-endian length, as text.
fn raw_bytes(mut buf: &[u8]) -> Result<Column, DecodeError> {
    let mut texts = Texts::with_capacity((buf.len() / 4).min(MAX_RESERVE));
    while !buf.is_empty() {
        let (len, rest) = buf.split_first_chunk::<4>().ok_or(DecodeError::BadTensor)?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(DecodeError::BadTensor);
        }
        let (elem, rest) = rest.split_at(len);
        texts.push(utf8(elem).ok_or(DecodeError::WrongType)?);
        buf = rest;
    }
    Ok(Column::Text(texts))
}

/// An IEEE half-precision value.
fn f16(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let (exp, frac) = (i32::from((bits >> 10) & 0x1f), f64::from(bits & 0x3ff));
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode, tests::H, Batch, Column, Side, Sources, Spare, Texts};
    use super::f16;
    use crate::pipeline::decode::DecodeError;

    /// A protobuf writer for the tests: fields by number.
    #[derive(Default, Clone)]
    struct Pb(Vec<u8>);

    impl Pb {
        fn varint(mut self, n: u64, v: u64) -> Pb {
            self.tag(n, 0);
            self.raw_varint(v);
            self
        }
        fn bytes(mut self, n: u64, b: &[u8]) -> Pb {
            self.tag(n, 2);
            self.raw_varint(b.len() as u64);
            self.0.extend_from_slice(b);
            self
        }
        fn text(self, n: u64, s: &str) -> Pb {
            self.bytes(n, s.as_bytes())
        }
        fn msg(self, n: u64, m: Pb) -> Pb {
            self.bytes(n, &m.0)
        }
        fn tag(&mut self, n: u64, wire: u64) {
            self.raw_varint(n << 3 | wire);
        }
        fn raw_varint(&mut self, mut v: u64) {
            while v >= 0x80 {
                self.0.push((v as u8) | 0x80);
                v >>= 7;
            }
            self.0.push(v as u8);
        }
    }

    fn packed(values: &[u64]) -> Vec<u8> {
        let mut p = Pb::default();
        values.iter().for_each(|&v| p.raw_varint(v));
        p.0
    }

    fn tensor(name: &str, datatype: &str, shape: &[u64], contents: Option<Pb>) -> Pb {
        let t = Pb::default().text(1, name).text(2, datatype).bytes(3, &packed(shape));
        match contents {
            Some(c) => t.msg(5, c),
            None => t,
        }
    }

    fn read(payload: &[u8], topic: Option<&str>, headers: &H) -> Result<Batch, DecodeError> {
        let src = Sources { topic, key: Some(b"r-7"), headers, topic_model: None };
        decode(payload, &src, 100, &mut Spare::default())
    }

    const INPUTS: Option<&str> = Some("seldon.prod.model.iris.inputs");
    const OUTPUTS: Option<&str> = Some("seldon.prod.model.iris.outputs");

    #[test]
    fn a_request_with_contents_of_every_kind() {
        let fp64: Vec<u8> = [5.1f64, -2.5].iter().flat_map(|x| x.to_le_bytes()).collect();
        let city = Pb::default().text(8, "Oslo").text(8, "Lima");
        let req = Pb::default()
            .text(3, "body-id")
            .msg(4, Pb::default().text(1, "timestamp").msg(2, Pb::default().text(3, "2026-01-02T03:04:05Z")))
            .msg(5, tensor("sepal", "FP64", &[2, 1], Some(Pb::default().bytes(7, &fp64))))
            .msg(5, tensor("count", "INT32", &[2], Some(Pb::default().bytes(2, &packed(&[3, (-4i64) as u64])))))
            .msg(5, tensor("city", "BYTES", &[2], Some(city)))
            .msg(5, tensor("vip", "BOOL", &[2], Some(Pb::default().varint(1, 1).varint(1, 0))))
            .msg(6, Pb::default().text(1, "predict"));
        let b = read(&req.0, INPUTS, &H(vec![])).unwrap();
        assert_eq!((b.side, b.model.as_str(), b.id.as_deref(), b.rows), (Side::Request, "iris", Some("r-7"), 2));
        assert_eq!(b.ts_ms, crate::time::parse_rfc3339_ms("2026-01-02T03:04:05Z"));
        assert_eq!(b.tensors[0].data, Column::Num(vec![5.1, -2.5]));
        assert_eq!(b.tensors[1].data, Column::Num(vec![3.0, -4.0]));
        assert_eq!(b.tensors[2].data, Column::Text(Texts::from_iter(["Oslo", "Lima"])));
        assert_eq!(b.tensors[3].data, Column::Bool(vec![true, false]));
        // the JSON of the same request reads alike
        let json = r#"{"id": "body-id", "parameters": {"timestamp": "2026-01-02T03:04:05Z"}, "inputs": [
            {"name": "sepal", "shape": [2, 1], "datatype": "FP64", "data": [5.1, -2.5]},
            {"name": "count", "shape": [2], "datatype": "INT32", "data": [3, -4]},
            {"name": "city", "shape": [2], "datatype": "BYTES", "data": ["Oslo", "Lima"]},
            {"name": "vip", "shape": [2], "datatype": "BOOL", "data": [true, false]}]}"#;
        assert_eq!(read(json.as_bytes(), INPUTS, &H(vec![])), Ok(b));
    }

    #[test]
    fn raw_contents_little_endian_and_length_prefixed_bytes() {
        let fp32: Vec<u8> = [0.5f32, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let int16: Vec<u8> = [-3i16, 7].iter().flat_map(|x| x.to_le_bytes()).collect();
        let half: Vec<u8> = [0x3c00u16, 0xc100].iter().flat_map(|x| x.to_le_bytes()).collect();
        let mut text = Vec::new();
        for s in ["ab", "ü"] {
            text.extend((s.len() as u32).to_le_bytes());
            text.extend(s.as_bytes());
        }
        let contents = Pb::default().bytes(6, &fp32);
        let resp = Pb::default()
            .text(1, "iris")
            .text(2, "4")
            .msg(5, tensor("p", "FP32", &[2], None))
            .msg(5, tensor("c", "FP32", &[2], Some(contents)))
            // empty contents (as MLServer's converter leaves them) are no values
            .msg(5, tensor("k", "INT16", &[2], Some(Pb::default())))
            .msg(5, tensor("h", "FP16", &[2], None))
            .msg(5, tensor("t", "BYTES", &[2], None))
            .bytes(6, &fp32)
            .bytes(6, &int16)
            .bytes(6, &half)
            .bytes(6, &text);
        let b = read(&resp.0, OUTPUTS, &H(vec![])).unwrap();
        assert_eq!((b.side, b.version.as_deref(), b.rows), (Side::Response, Some("4"), 2));
        let data: Vec<&Column> = b.tensors.iter().map(|t| &t.data).collect();
        assert_eq!(data[0], &Column::Num(vec![0.5, 2.0]));
        assert_eq!(data[1], &Column::Num(vec![0.5, 2.0]), "a tensor with contents takes no raw entry");
        assert_eq!(data[2], &Column::Num(vec![-3.0, 7.0]));
        assert_eq!(data[3], &Column::Num(vec![1.0, -2.5]));
        assert_eq!(data[4], &Column::Text(Texts::from_iter(["ab", "ü"])));
        // a raw entry that is no whole number of values, a length past the end
        let odd = Pb::default().msg(5, tensor("p", "FP32", &[2], None)).bytes(6, &fp32[..7]);
        assert_eq!(read(&odd.0, OUTPUTS, &H(vec![])), Err(DecodeError::BadTensor));
        let cut = Pb::default().msg(5, tensor("t", "BYTES", &[2], None)).bytes(6, &text[..8]);
        assert_eq!(read(&cut.0, OUTPUTS, &H(vec![])), Err(DecodeError::BadTensor));
    }

    #[test]
    fn the_side_comes_from_ce_type_the_topic_or_the_raw_field() {
        let fp64: Vec<u8> = 1.5f64.to_le_bytes().to_vec();
        let bare = Pb::default().text(1, "iris").msg(5, tensor("x", "FP64", &[1], Some(Pb::default().bytes(7, &fp64))));
        let side = |topic: Option<&str>, headers: Vec<(&'static str, &'static str)>| {
            read(&bare.0, topic, &H(headers)).map(|b| b.side)
        };
        assert_eq!(side(Some("iris-requests"), vec![]), Ok(Side::Request));
        assert_eq!(side(Some("triton_output"), vec![]), Ok(Side::Response));
        let ce = vec![("ce_type", "org.kubeflow.serving.inference.response")];
        assert_eq!(side(Some("logs"), ce), Ok(Side::Response));
        assert_eq!(side(Some("logs"), vec![]), Err(DecodeError::UnknownSide));
        let raw = Pb::default().text(1, "iris").msg(5, tensor("x", "FP64", &[1], None)).bytes(7, &fp64);
        let b = read(&raw.0, Some("logs"), &H(vec![])).unwrap();
        assert_eq!((b.side, &b.tensors[0].data), (Side::Request, &Column::Num(vec![1.5])));
    }

    #[test]
    fn what_is_not_a_v2_message_is_refused_by_reason() {
        let h = H(vec![]);
        let good = Pb::default().msg(5, tensor("x", "INT64", &[2], Some(Pb::default().bytes(3, &packed(&[1, 2])))));
        assert!(read(&good.0, INPUTS, &h).is_ok());
        // cut short, a length past the end, a group, a known field in the wrong wire type
        assert_eq!(read(&good.0[..good.0.len() - 1], INPUTS, &h), Err(DecodeError::BadProtobuf));
        assert_eq!(read(&[0x2a, 0x7f, 0x01], INPUTS, &h), Err(DecodeError::BadProtobuf));
        assert_eq!(read(&[0x0b, 0x0c], INPUTS, &h), Err(DecodeError::BadProtobuf));
        assert_eq!(read(&Pb::default().varint(5, 1).0, INPUTS, &h), Err(DecodeError::BadProtobuf));
        assert_eq!(read(&[0xff; 12], INPUTS, &h), Err(DecodeError::BadProtobuf));
        // text that is neither JSON nor protobuf
        assert_eq!(read(b"hello world", INPUTS, &h), Err(DecodeError::NotJson));
        // shape and data disagree; a negative dimension; an unknown datatype; too many rows
        let short = Pb::default().msg(5, tensor("x", "INT64", &[3], Some(Pb::default().bytes(3, &packed(&[1, 2])))));
        assert_eq!(read(&short.0, INPUTS, &h), Err(DecodeError::BadTensor));
        let negative = Pb::default().msg(5, tensor("x", "INT64", &[u64::MAX], None));
        assert_eq!(read(&negative.0, INPUTS, &h), Err(DecodeError::BadTensor));
        let unknown = Pb::default().msg(5, tensor("x", "INT4", &[1], None));
        assert_eq!(read(&unknown.0, INPUTS, &h), Err(DecodeError::BadDatatype));
        let many = Pb::default().msg(5, tensor("x", "INT64", &[101], None));
        assert_eq!(read(&many.0, INPUTS, &h), Err(DecodeError::BatchTooLarge));
        // numbers in two fields; BYTES that are not UTF-8; a content type saying JSON
        let two = Pb::default().msg(5, tensor("x", "INT64", &[2], Some(Pb::default().varint(3, 1).varint(2, 2))));
        assert_eq!(read(&two.0, INPUTS, &h), Err(DecodeError::WrongType));
        let binary = Pb::default().msg(5, tensor("x", "BYTES", &[1], Some(Pb::default().bytes(8, &[0xff, 0xfe]))));
        assert_eq!(read(&binary.0, INPUTS, &h), Err(DecodeError::WrongType));
        let json = H(vec![("content-type", "application/json")]);
        assert_eq!(read(&good.0, INPUTS, &json), Err(DecodeError::NotJson));
    }

    #[test]
    fn half_precision() {
        assert_eq!(f16(0x3c00), 1.0);
        assert_eq!(f16(0x0001), 2f64.powi(-24));
        assert_eq!(f16(0x7bff), 65504.0);
        assert_eq!(f16(0xfc00), f64::NEG_INFINITY);
        assert!(f16(0x7e00).is_nan());
    }
}
