//! The scanner against serde_json, on chosen, random and layout-sharing messages.

use super::super::json::full_default;
use super::*;
use crate::rand::XorShift64;

/// What a decode gave, comparable: the header and the scratch's pairs and version.
fn outcome(raw: &RawHeader<'_>, scratch: &Scratch) -> String {
    let ts = match &raw.ts {
        None => "none".to_string(),
        Some(TsDe::Ms(x)) => format!("ms {:?}", x.to_bits()),
        Some(TsDe::Text(s)) => format!("text {s}"),
        Some(TsDe::Null) => "null".to_string(),
    };
    let feats: Vec<String> = scratch
        .iter()
        .map(|(k, v)| match v {
            super::super::Val::Num(x) => format!("{k}=n{}", x.to_bits()),
            super::super::Val::Text(..) => format!("{k}=s{}", scratch.text(v)),
            other => format!("{k}={other:?}"),
        })
        .collect();
    format!("{:?} {ts} {feats:?} {:?}", raw.model, scratch.version())
}

/// The scanner either declines or agrees with serde_json, value for value.
fn agrees(text: &str) {
    let mut a = Scratch::new();
    let mut b = Scratch::new();
    let full = full_default(text, &mut b);
    if let Some(fast) = scan(text, &mut a) {
        let full = full.unwrap_or_else(|e| panic!("scanner accepted what serde_json refuses ({e}): {text}"));
        assert_eq!(outcome(&fast, &a), outcome(&full, &b), "{text}");
    }
}

#[test]
fn the_scanner_takes_the_default_layout() {
    let text = r#"{"model": "m", "model_version": 7, "timestamp": "2026-11-29T12:00:00Z", "request_id": "r",
        "features": {"a": 42, "b": -0.5e-3, "c": "EU", "d": true, "e": null, "f": -0}, "prediction": 0.83}"#;
    let mut s = Scratch::new();
    assert!(scan(text, &mut s).is_some());
    agrees(text);
}

#[test]
fn the_scanner_declines_what_it_does_not_know_and_agrees_on_the_rest() {
    let cases = [
        r#"{"model": "m\u0031"}"#,
        r#"{"model": "m", "meta": {"x": 1}}"#,
        r#"{"model": "m", "features": {"a": [1]}}"#,
        r#"{"model": "m", "features": {"a": 01}}"#,
        r#"{"model": "m", "features": {"a": 1.}}"#,
        r#"{"model": "m", "features": {"a": .5}}"#,
        r#"{"model": "m", "features": {"a": +1}}"#,
        r#"{"model": "m", "features": {"a": 1e400}}"#,
        r#"{"model": "m", "features": {"a": 123456789012345678901234567890}}"#,
        r#"{"model": "m", "features": {"a": 18446744073709551615}}"#,
        r#"{"model": "m", "features": {"a": 18446744073709551616}}"#,
        r#"{"model": "m", "features": {"a": -9223372036854775809}}"#,
        r#"{"model": "m", "features": {"a": 1}, "features": {"b": 2}}"#,
        r#"{"model": "m", "model": null}"#,
        r#"{"model": 5}"#,
        r#"{"model": "m", "timestamp": true}"#,
        r#"{"model": "m", "model_version": false}"#,
        r#"{"model": "m",}"#,
        r#"{"model": "m"} x"#,
        r#"{"model": "m"}  "#,
        "{\"model\": \"a\tb\"}",
        r#"{}"#,
        r#" { } "#,
        r#"{"features": null, "prediction": "yes"}"#,
        r#"{"model": "m", "features": {}}"#,
        r#"[1]"#,
        r#"{"model": tru}"#,
        r#"{"model": "m", "features": {"a": 0.1, "b": 2.2250738585072011e-308, "c": 4.9e-324, "d": 1.7976931348623157e308}}"#,
    ];
    for c in cases {
        agrees(c);
    }
}

#[test]
fn numbers_are_correctly_rounded() {
    let mut rng = XorShift64::new(3);
    for k in 0..200_000 {
        let x = (rng.next_f64() - 0.5) * 10f64.powi((rng.next_u64() % 40) as i32 - 20);
        let text = match k % 4 {
            0 => format!("{x}"),
            1 => format!("{x:e}"),
            2 => format!("{x:.6}"),
            _ => format!("{:.3}", x * 1e6),
        };
        // alone (digits one at a time at the end) and followed by more of a message
        // (eight at a time)
        for tail in ["", ", \"f1\": 12345678}"] {
            let line = format!("{text}{tail}");
            let mut p = Bytes { text: &line, b: line.as_bytes(), i: 0 };
            let got = p.number().unwrap_or_else(|| panic!("{line}"));
            assert_eq!(got.to_bits(), text.parse::<f64>().unwrap().to_bits(), "{line}");
            assert_eq!(p.i, text.len(), "{line}");
        }
    }
}

/// Two scratches reading messages of one layout give it one id (the router's slot cache
/// then holds across the daemon's per-place scratches); another layout gets another.
#[test]
fn one_layout_has_one_id_across_scratches() {
    let a = r#"{"model": "m", "features": {"x": 1.5, "y": "u"}, "prediction": 1}"#;
    let b = r#"{"model": "n", "features": {"x": -2, "y": "v"}, "prediction": 0.5}"#;
    let other = r#"{"model": "m", "features": {"y": "u", "x": 1.5}, "prediction": 1}"#;
    let (mut s1, mut s2) = (Scratch::new(), Scratch::new());
    assert!(scan(a, &mut s1).is_some() && scan(b, &mut s2).is_some());
    assert_ne!(s1.layout(), 0);
    assert_eq!(s1.layout(), s2.layout());
    s1.clear();
    assert!(scan(other, &mut s1).is_some());
    assert_ne!(s1.layout(), s2.layout());
}

/// Messages of a few layouts in runs and alternating, each value drawn at random
/// (nested values, escapes and malformed numbers among them), read with one scratch,
/// so through the remembered layout: each agrees with serde_json on a fresh scratch.
#[test]
fn a_remembered_layout_reads_as_the_long_way() {
    let mut rng = XorShift64::new(29);
    let atoms = [
        "0",
        "-1.25",
        "3.5e2",
        "7",
        "\"x\"",
        "\"\"",
        "true",
        "null",
        "[1]",
        "{}",
        "01",
        "-",
        "\"a\\nb\"",
        "1e400",
        "\"é\"",
        "12345678901234567890",
    ];
    let layouts = [
        ["{\"model\": ", ", \"model_version\": ", ", \"features\": {\"a\": ", ", \"b\": ", "}, \"prediction\": ", "}"],
        ["{\"model\":", ",\"timestamp\":", ",\"features\":{\"a\":", ",\"c\":", "},\"x\":", "}"],
        // (a key of the message's own given twice is refused, by both paths: not a layout)
        [" {\"features\": {\"b\": ", ", \"a\": ", "}, \"model\": ", ", \"model_version\": ", ", \"timestamp\": ", "} "],
    ];
    let mut scratch = Scratch::new();
    // per phase: messages the scanner read, and those of them read by a known layout
    let mut read = [(0, 0); 3];
    for k in 0..30_000 {
        // runs of one layout, then two interleaved, then three
        let (phase, layout) = match k {
            0..15_000 => (0, &layouts[(k / 500) % 3]),
            15_000..25_000 => (1, &layouts[k % 2]),
            _ => (2, &layouts[k % 3]),
        };
        let mut text = String::new();
        for (i, piece) in layout.iter().enumerate() {
            text.push_str(piece);
            if i + 1 < layout.len() {
                let atom = if rng.next_u64().is_multiple_of(8) {
                    atoms[(rng.next_u64() % atoms.len() as u64) as usize].to_string()
                } else if i == 0 || rng.next_u64().is_multiple_of(2) {
                    format!("\"m{}\"", rng.next_u64() % 3)
                } else {
                    format!("{}", (rng.next_f64() - 0.5) * 1e3)
                };
                text.push_str(&atom);
            }
        }
        let mut full = Scratch::new();
        let expected = full_default(&text, &mut full);
        scratch.clear();
        let got = scan(&text, &mut scratch);
        if let Some(got) = got {
            let expected =
                expected.unwrap_or_else(|e| panic!("scanner accepted what serde_json refuses ({e}): {text}"));
            assert_eq!(outcome(&got, &scratch), outcome(&expected, &full), "{text}");
            read[phase].0 += 1;
            read[phase].1 += usize::from(scratch.layout() != 0);
        }
    }
    // one layout, or two interleaved: (nearly) every message read the fast way is
    // read by its layout; three: the layouts rest
    assert!(read[0].1 * 100 >= read[0].0 * 99 && read[1].1 * 100 >= read[1].0 * 99, "{read:?}");
    assert!(read[2].0 > 2_000 && read[2].1 * 5 < read[2].0, "{read:?}");
}

#[test]
fn random_messages_decode_alike_on_both_paths() {
    let mut rng = XorShift64::new(11);
    let atoms = [
        "0",
        "-0",
        "1",
        "-1",
        "12.5",
        "1e3",
        "-2.5E-7",
        "0.1",
        "3.141592653589793",
        "1e-320",
        "\"x\"",
        "\"\"",
        "true",
        "false",
        "null",
        "\"é\"",
        "9007199254740993",
        "7.0",
        "1e308",
        "[]",
        "{}",
        "00",
        "-",
        "1e",
        "\"a\\\"b\"",
    ];
    let keys = ["model", "model_version", "timestamp", "features", "prediction", "other", "a", "b"];
    for _ in 0..20_000 {
        let mut text = String::from("{");
        let members = (rng.next_u64() % 6) as usize;
        for m in 0..members {
            if m > 0 {
                text.push_str(if rng.next_u64().is_multiple_of(50) { " ,, " } else { ", " });
            }
            let key = keys[(rng.next_u64() % keys.len() as u64) as usize];
            text.push_str(&format!("\"{key}\": "));
            if key == "features" && !rng.next_u64().is_multiple_of(4) {
                text.push('{');
                for f in 0..(rng.next_u64() % 4) {
                    if f > 0 {
                        text.push(',');
                    }
                    let atom = atoms[(rng.next_u64() % atoms.len() as u64) as usize];
                    text.push_str(&format!("\"f{f}\":{atom}"));
                }
                text.push('}');
            } else if key == "timestamp" && rng.next_u64().is_multiple_of(2) {
                text.push_str("\"2026-01-02T03:04:05.678Z\"");
            } else {
                text.push_str(atoms[(rng.next_u64() % atoms.len() as u64) as usize]);
            }
        }
        text.push('}');
        agrees(&text);
    }
}
