//! Ceilings for the pipeline's hot path: serde_json parsing each line of a JSON Lines file
//! and nothing else, twice: into `IgnoredAny` (a scan: numbers are not even converted) and
//! into `serde_json::Value` (a full parse).
//!
//! cargo run --release --example parse_ceiling -- LOGS.jsonl

use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: parse_ceiling LOGS.jsonl");
    let data = std::fs::read(&path).expect("input reads");
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let started = Instant::now();
    for line in &lines {
        let _: serde::de::IgnoredAny = serde_json::from_slice(line).expect("valid json");
    }
    let secs = started.elapsed().as_secs_f64();
    println!("scan (IgnoredAny): {} messages in {secs:.3} s: {:.0} messages/s", lines.len(), lines.len() as f64 / secs);
    let started = Instant::now();
    for line in &lines {
        let _: serde_json::Value = serde_json::from_slice(line).expect("valid json");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "full parse (Value): {} messages in {secs:.3} s: {:.0} messages/s",
        lines.len(),
        lines.len() as f64 / secs
    );
}
