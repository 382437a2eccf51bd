//! What KServe's payload logger writes besides bare V2 bodies: a structured-mode CloudEvent
//! (`{"specversion": ..., "id": ..., "type": "org.kubeflow.serving.inference.request",
//! "time": ..., "data": {...}}`, the `application/cloudevents+json` form) whose attributes
//! stand where binary mode's `ce_*` headers would, and V1 bodies (`{"instances": [...]}`,
//! `{"predictions": [...]}`: rows as lists, as objects, or single values), in it or bare.

use std::borrow::Cow;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::{decode, Batch, Column, Headers, Side, Sources, Spare, Tensor, Texts};
use crate::pipeline::decode::{DecodeError, Scalar};

/// A body with neither `inputs` nor `outputs`: a structured CloudEvent, or a V1 body.
pub(super) fn decode_other(
    payload: &[u8],
    src: &Sources<'_>,
    max_rows: usize,
    spare: &mut Spare,
) -> Result<Batch, DecodeError> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| DecodeError::NotJson)?;
    let Value::Object(obj) = value else { return Err(DecodeError::WrongType) };
    if obj.contains_key("specversion") {
        return structured(&obj, src, max_rows, spare);
    }
    v1(&obj, src, max_rows)
}

/// A structured-mode CloudEvent: its data read as a message whose `ce-*` headers are the
/// event's attributes (the Kafka message's own headers after them).
fn structured(
    event: &Map<String, Value>,
    src: &Sources<'_>,
    max_rows: usize,
    spare: &mut Spare,
) -> Result<Batch, DecodeError> {
    let data = match (event.get("data"), event.get("data_base64")) {
        (Some(Value::String(text)), _) => text.as_bytes().to_vec(),
        (Some(data @ Value::Object(_)), _) => serde_json::to_vec(data).map_err(|_| DecodeError::WrongType)?,
        (None, Some(Value::String(b64))) => {
            base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| DecodeError::BadBase64)?
        }
        _ => return Err(DecodeError::WrongType),
    };
    // an event in an event is not something a logger writes
    if serde_json::from_slice::<Map<String, Value>>(&data).is_ok_and(|d| d.contains_key("specversion")) {
        return Err(DecodeError::WrongType);
    }
    let attributes = Attributes { event, inner: src.headers };
    let inner = Sources { headers: &attributes, ..*src };
    decode(&data, &inner, max_rows, spare)
}

/// A CloudEvent's attributes as `ce-<name>` headers.
struct Attributes<'a> {
    event: &'a Map<String, Value>,
    inner: &'a dyn Headers,
}

impl Headers for Attributes<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        let attribute = name.get(..3).filter(|p| p.eq_ignore_ascii_case("ce-") || p.eq_ignore_ascii_case("ce_"));
        match attribute.and_then(|_| self.event.get(&name[3..].to_ascii_lowercase())) {
            Some(Value::String(s)) => Some(s.as_bytes()),
            _ => self.inner.header(name),
        }
    }
}

/// A V1 body: `instances` (a request) or `predictions` (a response).
fn v1(obj: &Map<String, Value>, src: &Sources<'_>, max_rows: usize) -> Result<Batch, DecodeError> {
    let (side, name, rows) = match (obj.get("instances"), obj.get("predictions")) {
        (Some(rows), _) => (Side::Request, "instances", rows),
        (None, Some(rows)) => (Side::Response, "predictions", rows),
        (None, None) => return Err(DecodeError::WrongType),
    };
    let rows = rows.as_array().ok_or(DecodeError::WrongType)?;
    if rows.len() > max_rows {
        return Err(DecodeError::BatchTooLarge);
    }
    let text = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_string);
    Ok(Batch {
        side,
        model: src.model(text("model_name")).ok_or(DecodeError::MissingModel)?,
        version: src.version(text("model_version")),
        id: src.id(text("id")),
        ts_ms: src.time(None)?,
        rows: rows.len(),
        tensors: tensors(rows, name)?,
    })
}

/// Rows as tensors: objects give a tensor per key (in the first row's order; every row has
/// every key), lists one tensor as wide as they are (named `name`), single values one column.
pub(super) fn tensors(rows: &[Value], name: &str) -> Result<Vec<Tensor>, DecodeError> {
    match rows.first() {
        None => Ok(Vec::new()),
        Some(Value::Object(first)) => first
            .keys()
            .map(|key| {
                let values = rows.iter().map(|r| r.as_object().and_then(|o| o.get(key)));
                let values: Option<Vec<&Value>> = values.collect();
                Ok(Tensor { name: key.clone(), width: 1, data: column(values.ok_or(DecodeError::WrongType)?)? })
            })
            .collect(),
        Some(Value::Array(first)) => {
            let width = first.len();
            let mut values = Vec::with_capacity(rows.len() * width);
            for r in rows {
                match r.as_array() {
                    Some(cells) if cells.len() == width => values.extend(cells),
                    _ => return Err(DecodeError::BadTensor),
                }
            }
            if width == 0 {
                return Err(DecodeError::BadTensor);
            }
            Ok(vec![Tensor { name: name.to_string(), width, data: column(values)? }])
        }
        Some(_) => Ok(vec![Tensor { name: name.to_string(), width: 1, data: column(rows.iter().collect())? }]),
    }
}

/// Values as a column: of one kind (numbers, booleans, text), else each as it is (nulls
/// missing); a list or an object as a value is refused.
fn column(values: Vec<&Value>) -> Result<Column, DecodeError> {
    let all = |f: fn(&Value) -> bool| values.iter().all(|v| f(v));
    Ok(if all(Value::is_number) {
        Column::Num(values.iter().filter_map(|v| v.as_f64()).collect())
    } else if all(Value::is_boolean) {
        Column::Bool(values.iter().filter_map(|v| v.as_bool()).collect())
    } else if all(Value::is_string) {
        Column::Text(values.iter().filter_map(|v| v.as_str()).collect::<Texts>())
    } else {
        let cell = |v: &&Value| match v {
            Value::Number(n) => n.as_f64().map(Scalar::Num).ok_or(DecodeError::WrongType),
            Value::Bool(b) => Ok(Scalar::Bool(*b)),
            Value::String(s) => Ok(Scalar::Str(Cow::Owned(s.clone()))),
            Value::Null => Ok(Scalar::Null),
            Value::Array(_) | Value::Object(_) => Err(DecodeError::WrongType),
        };
        Column::Mixed(values.iter().map(cell).collect::<Result<_, _>>()?)
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::H;
    use super::*;

    fn read(payload: &str, headers: &[(&'static str, &'static str)]) -> Result<Batch, DecodeError> {
        let headers = H(headers.to_vec());
        let src = Sources { topic: None, key: None, headers: &headers, topic_model: None };
        decode(payload.as_bytes(), &src, 100, &mut Spare::default())
    }

    #[test]
    fn a_structured_cloudevent_gives_its_attributes_and_its_v2_data() {
        let event = r#"{"specversion": "1.0", "id": "req-7", "source": "http://localhost:9081/",
            "type": "org.kubeflow.serving.inference.request", "time": "2026-12-01T10:00:00Z",
            "inferenceservicename": "sklearn-iris", "datacontenttype": "application/json",
            "data": {"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1.5, 2.5]}]}}"#;
        let b = read(event, &[]).unwrap();
        assert_eq!(
            (b.side, b.model.as_str(), b.id.as_deref(), b.rows),
            (Side::Request, "sklearn-iris", Some("req-7"), 2)
        );
        assert_eq!(b.ts_ms, Some(1_796_119_200_000));
        assert_eq!(b.tensors[0].data, Column::Num(vec![1.5, 2.5]));
        // the data as base64, a V1 response
        let b64 = base64::engine::general_purpose::STANDARD.encode(r#"{"predictions": [1, 0, 2]}"#);
        let event = format!(
            r#"{{"specversion": "1.0", "id": "req-7", "inferenceservicename": "iris", "data_base64": "{b64}"}}"#
        );
        let b = read(&event, &[]).unwrap();
        assert_eq!((b.side, b.rows, b.tensors[0].name.as_str()), (Side::Response, 3, "predictions"));
        assert_eq!(b.tensors[0].data, Column::Num(vec![1.0, 0.0, 2.0]));
    }

    #[test]
    fn v1_rows_as_lists_objects_or_values_in_binary_mode() {
        let ce = [("ce_id", "r1"), ("ce_inferenceservicename", "iris"), ("ce_time", "2026-12-01T10:00:00Z")];
        let b = read(r#"{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}"#, &ce).unwrap();
        assert_eq!((b.model.as_str(), b.id.as_deref(), b.rows), ("iris", Some("r1"), 2));
        assert_eq!((b.tensors.len(), b.tensors[0].width), (1, 4));
        let b = read(r#"{"instances": [{"age": 31, "city": "Oslo"}, {"age": 45, "city": "Lima"}]}"#, &ce).unwrap();
        let names: Vec<&str> = b.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["age", "city"]);
        assert_eq!(b.tensors[1].data, Column::Text(Texts::from_iter(["Oslo", "Lima"])));
        let b = read(r#"{"instances": [[42, "EU", null], [37, "US", true]]}"#, &ce).unwrap();
        let cells = [Scalar::Num(42.0), Scalar::Str("EU".into()), Scalar::Null];
        assert!(matches!(&b.tensors[0].data, Column::Mixed(v) if v[..3] == cells[..]));
        let b = read(r#"{"predictions": [{"score": 0.9}, {"score": 0.1}]}"#, &ce).unwrap();
        assert_eq!((b.side, b.tensors[0].name.as_str()), (Side::Response, "score"));
        for (bad, why) in [
            (r#"{"instances": [[1, 2], [3]]}"#, DecodeError::BadTensor),
            (r#"{"instances": [{"a": 1}, {"b": 2}]}"#, DecodeError::WrongType),
            (r#"{"instances": [[1, [2]]]}"#, DecodeError::WrongType),
            (r#"{"instances": 5}"#, DecodeError::WrongType),
            (r#"{"something": []}"#, DecodeError::WrongType),
            (r#"{"specversion": "1.0", "data": {"specversion": "1.0", "data": {}}}"#, DecodeError::WrongType),
            (r#"{"specversion": "1.0", "data_base64": "%%%"}"#, DecodeError::BadBase64),
        ] {
            assert_eq!(read(bad, &ce).unwrap_err(), why, "{bad}");
        }
        let many = format!(r#"{{"instances": [{}]}}"#, vec!["1"; 101].join(","));
        assert_eq!(read(&many, &ce).unwrap_err(), DecodeError::BatchTooLarge);
    }
}
