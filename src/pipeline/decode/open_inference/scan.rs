//! The common V2 body read without serde, by the scanner's byte reader (`decode/scan/`):
//! known keys, plain strings, numbers, booleans. Anything else (an escape in a string, a key
//! given twice, data of mixed kinds, a value nested too deep) gives `None`, and serde reads
//! the message instead, with its errors: the two paths agree on every message they both
//! take (a unit test holds them to it).

use super::{kind_of, Body, BodyParams, Column, Data, Params, Shape, Spare, TensorDe, MAX_DEPTH};
use crate::pipeline::decode::scan::Bytes;
use crate::pipeline::decode::Scalar;

/// The body of `text`, or `None` for serde to read; `spare` lends buffers.
pub(super) fn body(text: &str, spare: &mut Spare) -> Option<Body> {
    let mut p = Bytes::new(text);
    let mut body = Body::default();
    let mut seen = 0u8;
    p.ws();
    p.object(|p, key| {
        let bit = match key {
            "id" => 1,
            "model_name" => 2,
            "model_version" => 4,
            "inputs" => 8,
            "outputs" => 16,
            "parameters" => 32,
            _ => 0,
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        match key {
            "id" => body.id = string(p, spare)?,
            "model_name" => body.model_name = string(p, spare)?,
            "model_version" => body.model_version = string(p, spare)?,
            "inputs" => body.inputs = tensors(p, spare)?,
            "outputs" => body.outputs = tensors(p, spare)?,
            "parameters" => body.parameters = params(p)?,
            _ => skip(p, 0)?,
        }
        Some(())
    })?;
    p.ws();
    p.at_end().then_some(body)
}

/// A string or null.
fn string(p: &mut Bytes<'_>, spare: &mut Spare) -> Option<Option<String>> {
    match p.scalar()? {
        Scalar::Str(s) => Some(Some(spare.name(&s))),
        Scalar::Null => Some(None),
        _ => None,
    }
}

/// The body's `parameters`: the `timestamp`, the rest skipped.
fn params(p: &mut Bytes<'_>) -> Option<Option<BodyParams>> {
    if p.literal(b"null").is_some() {
        return Some(None);
    }
    let mut params = BodyParams::default();
    let mut seen = false;
    p.object(|p, key| {
        if key != "timestamp" {
            return skip(p, 0);
        }
        if std::mem::replace(&mut seen, true) {
            return None;
        }
        params.timestamp = match p.scalar()? {
            Scalar::Str(s) => Some(serde_json::Value::String(s.into_owned())),
            // a whole number as serde reads it (an integer), else a float
            Scalar::Num(x) if x.fract() == 0.0 && x.abs() < 9e15 => Some(serde_json::Value::from(x as i64)),
            Scalar::Num(x) => Some(serde_json::Value::from(x)),
            Scalar::Null => None,
            Scalar::Bool(b) => Some(serde_json::Value::Bool(b)),
        };
        Some(())
    })?;
    Some(Some(params))
}

/// A list of tensors, or null.
fn tensors(p: &mut Bytes<'_>, spare: &mut Spare) -> Option<Option<Vec<TensorDe>>> {
    if p.literal(b"null").is_some() {
        return Some(None);
    }
    let mut out = spare.bodies.pop().unwrap_or_default();
    p.list(|p| {
        out.push(tensor(p, spare)?);
        Some(())
    })?;
    Some(Some(out))
}

fn tensor(p: &mut Bytes<'_>, spare: &mut Spare) -> Option<TensorDe> {
    let (mut name, mut shape, mut datatype, mut parameters, mut data) = (None, None, None, None, None);
    let mut seen = 0u8;
    p.object(|p, key| {
        let bit = match key {
            "name" => 1,
            "shape" => 2,
            "datatype" => 4,
            "parameters" => 8,
            "data" => 16,
            _ => 0,
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        match key {
            "name" => match p.scalar()? {
                Scalar::Str(s) => name = Some(spare.name(&s)),
                _ => return None,
            },
            "shape" => {
                let (mut rows, mut width, mut dims) = (1, Some(1u64), 0);
                p.list(|p| {
                    let x = p.number()?;
                    // what serde takes as a u64
                    if !(x >= 0.0 && x.fract() == 0.0 && x < 9e15) {
                        return None;
                    }
                    match dims {
                        0 => rows = x as u64,
                        _ => width = width.and_then(|w| w.checked_mul(x as u64)),
                    }
                    dims += 1;
                    Some(())
                })?;
                shape = Some(Shape { rows, width });
            }
            "datatype" => {
                datatype = match p.scalar()? {
                    Scalar::Str(s) => Some(kind_of(&s)),
                    Scalar::Null => None,
                    _ => return None,
                }
            }
            "parameters" => {
                let mut content_type = None;
                p.object(|p, key| match key {
                    "content_type" if content_type.is_none() => {
                        content_type = Some(string(p, spare)?);
                        Some(())
                    }
                    "content_type" => None,
                    _ => skip(p, 0),
                })?;
                parameters = Some(Params { content_type: content_type.flatten() });
            }
            "data" => {
                // room for the values a shape read before announces, within what the text holds
                let announced = shape.map_or(1, |s: Shape| s.values().unwrap_or(u64::MAX));
                let room = usize::try_from(announced).unwrap_or(usize::MAX).min((p.remaining() / 2).max(1));
                data = Some(Data(values(p, room, spare)?));
            }
            _ => skip(p, 0)?,
        }
        Some(())
    })?;
    Some(TensorDe { name: name?, shape, datatype, parameters, data })
}

/// A tensor's values, nested lists flattened row-major (a bare value is a list of one):
/// numbers, booleans or plain strings, one kind throughout.
fn values(p: &mut Bytes<'_>, room: usize, spare: &mut Spare) -> Option<Column> {
    let mut col: Option<Column> = None;
    let mut depth = 0u8;
    loop {
        // a value: a list opening, or a scalar
        if p.peek()? == b'[' {
            depth += 1;
            if depth > MAX_DEPTH {
                return None;
            }
            p.i += 1;
            p.ws();
            if p.peek()? != b']' {
                continue;
            }
            p.i += 1;
            depth -= 1;
        } else if let Some(Column::Num(v)) = &mut col {
            // the common case: the rest of a list of numbers, read in one go
            v.push(p.number()?);
            p.ws();
            while p.peek()? == b',' {
                p.i += 1;
                p.ws();
                if p.peek()? == b'[' {
                    break;
                }
                v.push(p.number()?);
                p.ws();
            }
            if p.peek()? == b'[' {
                continue;
            }
        } else {
            match (&mut col, p.scalar()?) {
                (Some(Column::Num(v)), Scalar::Num(x)) => v.push(x),
                (Some(Column::Bool(v)), Scalar::Bool(b)) => v.push(b),
                (Some(Column::Text(v)), Scalar::Str(s)) => v.push(&s),
                (None, first) => {
                    col = Some(match first {
                        Scalar::Num(x) => {
                            let mut v = spare.nums(room);
                            v.push(x);
                            Column::Num(v)
                        }
                        Scalar::Bool(b) => Column::Bool(with_first(room, b)),
                        Scalar::Str(s) => {
                            let mut texts = spare.texts(room);
                            texts.push(&s);
                            Column::Text(texts)
                        }
                        Scalar::Null => return None,
                    })
                }
                _ => return None,
            }
        }
        // after a value: a comma, or lists closing
        loop {
            p.ws();
            if depth == 0 {
                return Some(col.unwrap_or(Column::Num(Vec::new())));
            }
            match p.peek()? {
                b',' => {
                    p.i += 1;
                    p.ws();
                    break;
                }
                b']' => {
                    p.i += 1;
                    depth -= 1;
                }
                _ => return None,
            }
        }
    }
}

fn with_first<T>(room: usize, first: T) -> Vec<T> {
    let mut v = Vec::with_capacity(room);
    v.push(first);
    v
}

/// Any value, not kept (`depth`: lists and objects it is in).
fn skip(p: &mut Bytes<'_>, depth: u8) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    match p.peek()? {
        b'{' => p.object(|p, _| skip(p, depth + 1)),
        b'[' => p.list(|p| skip(p, depth + 1)),
        _ => p.scalar().map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde makes of the text: the body, or an error.
    fn serde(text: &str) -> Option<Body> {
        serde_json::from_str(text).ok()
    }

    #[test]
    fn the_fast_path_reads_what_serde_reads_or_leaves_the_message_to_it() {
        let bodies = [
            r#"{"id": "a", "model_name": "m", "model_version": "2", "inputs": [{"name": "x", "shape": [2, 1], "datatype": "FP64", "data": [1.5, -2e3]}]}"#,
            r#"{"outputs": [{"name": "p", "shape": [2, 2], "datatype": "FP32", "data": [[0.1, 0.9], [0.7, 0.3]]}], "parameters": {"timestamp": 1767225600000, "other": [1, {"a": null}]}}"#,
            r#"{"inputs": [{"name": "c", "shape": [2], "datatype": "BYTES", "parameters": {"content_type": "str", "x": 1}, "data": ["Oslo", "Lima"]}, {"name": "b", "shape": [2], "datatype": "BOOL", "data": [true, false]}]}"#,
            r#" { "inputs" : [ { "name" : "x" , "shape" : [ 3 ] , "datatype" : "INT64" , "data" : [ 1 , 2 , 3 ] } ] } "#,
            r#"{"inputs": [{"name": "x", "shape": [1], "datatype": null, "data": [1]}], "id": null}"#,
            r#"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": 7}]}"#,
            r#"{"inputs": [{"name": "x", "shape": [0], "datatype": "FP64", "data": []}], "extra": "ab"}"#,
            r#"{"inputs": null, "outputs": [{"name": "p", "shape": [1], "datatype": "INT64", "data": [[[1]]]}]}"#,
            r#"{"parameters": {"timestamp": "2026-01-01T00:00:00Z"}, "inputs": []}"#,
            // for serde: an escape, a key twice, kinds mixed, null data, a float shape,
            // text after the body, a bad list
            r#"{"inputs": [{"name": "x\u0041", "shape": [1], "datatype": "FP64", "data": [1]}]}"#,
            r#"{"inputs": [], "inputs": []}"#,
            r#"{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1, "a"]}]}"#,
            r#"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [null]}]}"#,
            r#"{"inputs": [{"name": "x", "shape": [1.5], "datatype": "FP64", "data": [1]}]}"#,
            r#"{"inputs": []} x"#,
            r#"{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1,]}]}"#,
            r#"{"inputs": [{"name": "x", "shape": [1], "data": [[[[[[[[[1]]]]]]]]]}]}"#,
        ];
        let mut fast = 0;
        for text in bodies {
            // where it declines, serde decides: some it takes, the others it refuses
            if let Some(b) = body(text, &mut Spare::default()) {
                fast += 1;
                assert_eq!(Some(b), serde(text), "{text}");
            }
        }
        assert_eq!(fast, 9, "the first nine are the fast path's");
        assert!(
            body(bodies[9], &mut Spare::default()).is_none() && serde(bodies[9]).is_some(),
            "an escaped name goes to serde"
        );
        for text in &bodies[10..] {
            assert!(body(text, &mut Spare::default()).is_none() && serde(text).is_none(), "{text}");
        }
    }
}
