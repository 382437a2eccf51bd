use super::*;

fn decoder() -> Decoder {
    Decoder::new(&MappingSettings::default(), 1 << 20)
}

fn decode(d: &Decoder, msg: &[u8], default: Option<&str>) -> Result<(String, Option<i64>, Vec<String>), DecodeError> {
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
    assert_eq!(decode(&d, br#"{"model": "m", "timestamp": 1700000000000}"#, None).unwrap().1, Some(1_700_000_000_000));
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
