//! SageMaker Data Capture's records (`replay --format sagemaker-capture`): what an endpoint
//! with data capture on writes to S3, JSON Lines of one invocation each, its input and its
//! output together, so no pairing is needed:
//!
//! ```json
//! {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
//!    "data": "8.3,41,6.9\n7.2,21,6.2", "encoding": "CSV"},
//!   "endpointOutput": {"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT",
//!    "data": "0.91\n0.12", "encoding": "CSV"}},
//!  "eventMetadata": {"eventId": "…", "inferenceId": "…", "inferenceTime": "2026-12-01T10:00:00Z"},
//!  "eventVersion": "0"}
//! ```
//!
//! `data` is the payload as the endpoint saw it: CSV (a row a line; numbers, text, empty
//! cells missing), or JSON (`{"instances": [...]}` / `{"predictions": [...]}`, a list of
//! rows, or one row), BASE64-encoded or not. Capture records name no model: it is
//! `[kafka.topic_models]`'s for the topic (`replay --topic`), else the config's only model.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use super::kserve::tensors;
use super::{Batch, Side, Sources, Tensor};
use crate::pipeline::decode::DecodeError;
use crate::time::parse_rfc3339_ms;

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "captureData")]
    capture: Capture,
    #[serde(rename = "eventMetadata", default)]
    meta: Meta,
}

#[derive(Deserialize)]
struct Capture {
    #[serde(rename = "endpointInput")]
    input: Payload,
    #[serde(rename = "endpointOutput", default)]
    output: Option<Payload>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "observedContentType", default)]
    content_type: String,
    #[serde(default)]
    encoding: String,
    data: String,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(rename = "eventId", default)]
    event_id: Option<String>,
    #[serde(rename = "inferenceId", default)]
    inference_id: Option<String>,
    #[serde(rename = "inferenceTime", default)]
    inference_time: Option<String>,
}

/// One record: the request's rows, and the response's when it was captured.
pub fn decode(payload: &[u8], src: &Sources<'_>, max_rows: usize) -> Result<(Batch, Option<Batch>), DecodeError> {
    let record: Record = serde_json::from_slice(payload).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => DecodeError::WrongType,
        _ => DecodeError::NotJson,
    })?;
    let model = src.model(None).ok_or(DecodeError::MissingModel)?;
    let ts_ms = match &record.meta.inference_time {
        Some(t) => Some(parse_rfc3339_ms(t).ok_or(DecodeError::BadTimestamp)?),
        None => src.time(None)?,
    };
    let id = record.meta.inference_id.or(record.meta.event_id);
    let half = |side, payload: &Payload, name| -> Result<Batch, DecodeError> {
        let (rows, tensors) = rows(payload, name, max_rows)?;
        Ok(Batch { side, model: model.clone(), version: None, id: id.clone(), ts_ms, rows, tensors })
    };
    let request = half(Side::Request, &record.capture.input, "instances")?;
    let response = record.capture.output.as_ref().map(|o| half(Side::Response, o, "predictions")).transpose()?;
    Ok((request, response))
}

/// A payload's rows as tensors.
fn rows(p: &Payload, name: &str, max_rows: usize) -> Result<(usize, Vec<Tensor>), DecodeError> {
    let text = if p.encoding.eq_ignore_ascii_case("BASE64") {
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(p.data.trim()).map_err(|_| DecodeError::BadBase64)?;
        String::from_utf8(bytes).map_err(|_| DecodeError::BadBase64)?
    } else {
        p.data.clone()
    };
    let json = p.content_type.to_ascii_lowercase().contains("json") || p.encoding.eq_ignore_ascii_case("JSON");
    let rows: Vec<Value> = if json {
        match serde_json::from_str::<Value>(&text).map_err(|_| DecodeError::NotJson)? {
            Value::Object(mut o) => match o.remove("instances").or_else(|| o.remove("predictions")) {
                Some(Value::Array(rows)) => rows,
                Some(_) => return Err(DecodeError::WrongType),
                // one row as an object
                None => vec![Value::Object(o)],
            },
            Value::Array(rows) => rows,
            one => vec![one],
        }
    } else {
        text.lines().filter(|l| !l.trim().is_empty()).map(csv_row).collect()
    };
    if rows.len() > max_rows {
        return Err(DecodeError::BatchTooLarge);
    }
    Ok((rows.len(), tensors(&rows, name)?))
}

/// A CSV line's cells: numbers, text (quotes removed, `""` a quote), empty cells null; a
/// line of one cell is that value, not a list.
fn csv_row(line: &str) -> Value {
    let mut cells = Vec::new();
    let (mut cell, mut quoted, mut was_quoted) = (String::new(), false, false);
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if cell.is_empty() => (quoted, was_quoted) = (true, true),
            (',', false) => cells.push(value(std::mem::take(&mut cell), std::mem::take(&mut was_quoted))),
            (c, _) => cell.push(c),
        }
    }
    cells.push(value(cell, was_quoted));
    if cells.len() == 1 {
        return cells.pop().expect("one cell");
    }
    Value::Array(cells)
}

fn value(cell: String, quoted: bool) -> Value {
    let trimmed = cell.trim();
    if quoted {
        return Value::String(cell);
    }
    if trimmed.is_empty() {
        return Value::Null;
    }
    match trimmed.parse::<f64>() {
        Ok(x) if x.is_finite() => serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number),
        _ => Value::String(trimmed.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Column, Headers};
    use super::*;

    fn read(record: &str) -> Result<(Batch, Option<Batch>), DecodeError> {
        let src = Sources { topic: None, key: None, headers: &() as &dyn Headers, topic_model: Some("m") };
        decode(record.as_bytes(), &src, 100)
    }

    #[test]
    fn a_csv_capture_gives_rows_and_their_predictions() {
        let record = r#"{"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
            "data": "8.3,41,EU\n7.2,,\"U,S\"", "encoding": "CSV"}, "endpointOutput": {"observedContentType":
            "text/csv; charset=utf-8", "mode": "OUTPUT", "data": "0.91\n0.12", "encoding": "CSV"}},
            "eventMetadata": {"eventId": "e1", "inferenceId": "i1", "inferenceTime": "2026-12-01T10:00:00Z"},
            "eventVersion": "0"}"#;
        let (req, resp) = read(record).unwrap();
        let resp = resp.unwrap();
        assert_eq!(
            (req.model.as_str(), req.id.as_deref(), req.ts_ms, req.rows),
            ("m", Some("i1"), Some(1_796_119_200_000), 2)
        );
        assert_eq!((req.tensors[0].width, resp.tensors[0].width, resp.rows), (3, 1, 2));
        assert_eq!(resp.tensors[0].data, Column::Num(vec![0.91, 0.12]));
        match &req.tensors[0].data {
            Column::Mixed(v) => assert_eq!(v.len(), 6),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_and_base64_captures_and_bad_ones() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(r#"{"instances": [{"a": 1, "b": "x"}]}"#);
        let record = format!(
            r#"{{"captureData": {{"endpointInput": {{"observedContentType": "application/json", "data": "{b64}", "encoding": "BASE64"}},
              "endpointOutput": {{"observedContentType": "application/json", "data": "{{\"predictions\": [[0.2, 0.8]]}}", "encoding": "JSON"}}}},
              "eventMetadata": {{"eventId": "e2"}}}}"#
        );
        let (req, resp) = read(&record).unwrap();
        assert_eq!((req.id.as_deref(), req.tensors.len(), resp.unwrap().tensors[0].width), (Some("e2"), 2, 2));
        for bad in [
            r#"{"captureData": {"endpointInput": {"data": "%%%", "encoding": "BASE64"}}}"#,
            r#"{"captureData": {"endpointInput": {"data": "1", "encoding": "CSV"}}, "eventMetadata": {"inferenceTime": "noon"}}"#,
            r#"{"captureData": {}}"#,
            r#"{"captureData": {"endpointInput": {"observedContentType": "application/json", "data": "{"}}}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
