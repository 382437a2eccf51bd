//! A broken pipeline is not drift: values canonicalised before they are counted (category
//! codes as text, booleans in any case, numbers sent as text), and a window whose data
//! breaks the quality rule raises its own alert, counts as neither drifted nor clean, and
//! never starts a retrain. Through the real binary (`driftd replay`) and recording HTTP
//! receivers.

use driftd::rand::XorShift64;
use serde_json::{json, Value};

use crate::helpers::{fmt_ms, replay, Receiver, Reply};

const MODEL: &str = "claims";
const PER_WINDOW: usize = 2000;

/// One row: a 24-category code (integers in the reference), a 5-value region id, an amount,
/// a flag. Codes follow a 1/(i+1) law, so some categories are rare.
struct Row {
    code: u32,
    region: u32,
    amount: f64,
    flag: bool,
}

fn draw(rng: &mut XorShift64) -> Row {
    let weights: Vec<f64> = (0..24).map(|i| 1.0 / (i as f64 + 1.0)).collect();
    let mut u = rng.next_f64() * weights.iter().sum::<f64>();
    let mut code = 0;
    for (i, w) in weights.iter().enumerate() {
        code = i as u32;
        if u < *w {
            break;
        }
        u -= w;
    }
    Row {
        code,
        region: 1 + rng.below(5) as u32,
        amount: (3.0 + 0.5 * rng.normal()).exp().round(),
        flag: rng.next_f64() < 0.3,
    }
}

fn reference(dir: &std::path::Path) -> std::path::PathBuf {
    let mut rng = XorShift64::new(11);
    let mut csv = String::from("code,region,amount,flag\n");
    for _ in 0..5000 {
        let r = draw(&mut rng);
        csv.push_str(&format!("{},{},{},{}\n", r.code, r.region, r.amount, r.flag));
    }
    let path = dir.join("claims.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// How a window's events carry their values.
#[derive(Clone, Copy)]
enum Carry {
    /// Codes and regions as text (`"16"`), flags as `"True"`, amounts as text (`"20.0"`).
    AsText,
    /// An upstream change: the amount field holds a currency string, and codes shift (which
    /// alone would be drift).
    Broken,
}

fn logs(windows: &[Carry]) -> String {
    let mut rng = XorShift64::new(29);
    let start_ms: i64 = 1_793_491_200_000;
    let mut out = Vec::new();
    for (w, carry) in windows.iter().enumerate() {
        for i in 0..PER_WINDOW {
            let r = draw(&mut rng);
            let ts = fmt_ms(start_ms + ((w * PER_WINDOW + i) as i64) * 1000);
            let flag = if i % 2 == 0 { json!(if r.flag { "True" } else { "FALSE" }) } else { json!(r.flag) };
            let features = match carry {
                Carry::AsText => json!({
                    "code": r.code.to_string(), "region": format!("{}", r.region),
                    "amount": format!("{:.1}", r.amount), "flag": flag, "session": "abc",
                }),
                Carry::Broken => json!({
                    "code": (r.code + 7) % 24, "region": r.region,
                    "amount": format!("EUR {}", r.amount), "flag": r.flag,
                }),
            };
            out.push(json!({"model": MODEL, "timestamp": ts, "features": features}).to_string());
        }
    }
    out.join("\n")
}

fn config(dir: &std::path::Path, reference: &std::path::Path, model_extra: &str, actions: &str) -> std::path::PathBuf {
    let path = dir.join("driftd.toml");
    let text = format!(
        "[state]\ndir = \"{}\"\n[defaults]\nwindow = {{ events = {PER_WINDOW} }}\n{actions}\n\
         [[models]]\nname = \"{MODEL}\"\nreference = \"{}\"\n{model_extra}\n",
        dir.join("state").display(),
        reference.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn feature<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["features"].as_array().unwrap().iter().find(|f| f["name"] == json!(name)).unwrap_or_else(|| {
        panic!("{name} is not in the report: {report}");
    })
}

/// Codes sent as text, flags in any case, amounts as text: the same data as the
/// reference, so no drift and nothing invalid, whether the codes are declared categorical
/// (compared by canonical text) or left numerical (text read as numbers).
#[test]
fn values_are_canonicalised_before_they_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let reference = reference(dir.path());
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, logs(&[Carry::AsText, Carry::AsText])).unwrap();
    for extra in ["categorical = [\"code\", \"region\"]", ""] {
        let cfg = config(dir.path(), &reference, extra, "");
        let (reports, _) = replay(&cfg, &input);
        assert_eq!(reports.len(), 2, "{extra}");
        for r in &reports {
            assert_eq!(r["invalid_values"], json!(0), "{extra}: {r}");
            assert_eq!(r["dataset_drift"], json!(false), "{extra}: {r}");
            assert_eq!(r["data_quality"]["passed"], json!(true), "{extra}: {r}");
            assert!(r.get("skipped").is_none_or(|s| s == &json!([])), "{extra}: every feature has values: {r}");
            // `session` is not in the reference: counted, once per message
            assert_eq!(r["data_quality"]["unmonitored_fields"], json!(PER_WINDOW), "{extra}");
            for name in ["code", "region", "amount", "flag"] {
                let f = feature(r, name);
                assert_eq!(f["drifted"], json!(false), "{extra}: {f}");
                assert_eq!(f["current_count"], json!(PER_WINDOW), "{extra}: {f}");
                assert_eq!(f["current_invalid_share"], json!(0.0), "{extra}: {f}");
            }
            for name in ["flag"].iter().chain(if extra.is_empty() { &[][..] } else { &["code", "region"][..] }) {
                assert_eq!(feature(r, name)["current_unseen_share"], json!(0.0), "{extra}: {name} {r}");
            }
        }
    }
}

/// Amounts arrive as `"EUR 20"` in two windows (the codes shift in them too): a
/// data-quality failure on every receiver, resolved when the data is good again, and no
/// drift alert, no retrain, though the codes alone would have been drift.
#[test]
fn a_broken_pipeline_alerts_as_broken_data_and_never_retrains() {
    let dir = tempfile::tempdir().unwrap();
    let reference = reference(dir.path());
    let input = dir.path().join("events.jsonl");
    use Carry::*;
    std::fs::write(&input, logs(&[AsText, Broken, Broken, AsText, AsText])).unwrap();
    let r = Receiver::start(vec![], Reply::status(200));
    let actions = format!(
        "[retrain]\npreset = \"webhook\"\nurl = \"{}\"\nsecret = \"whsec_test\"\n\n\
         [[alerts]]\nkind = \"alertmanager\"\nurl = \"{}\"\n\n\
         [[alerts]]\nkind = \"slack\"\nurl = \"{}\"\n\n\
         [[alerts]]\nkind = \"pagerduty\"\nurl = \"{}\"\nsecret = \"R0UTINGKEY\"\n\n\
         [[alerts]]\nkind = \"webhook\"\nurl = \"{}\"\n",
        r.url("/retrain"),
        r.url("/am"),
        r.url("/slack"),
        r.url("/pd"),
        r.url("/wh")
    );
    let cfg = config(dir.path(), &reference, "categorical = [\"code\"]\nfire_after = 1", &actions);
    let (reports, _) = replay(&cfg, &input);
    assert_eq!(reports.len(), 5);
    let passed: Vec<&Value> = reports.iter().map(|r| &r["data_quality"]["passed"]).collect();
    assert_eq!(passed, [&json!(true), &json!(false), &json!(false), &json!(true), &json!(true)]);
    for broken in &reports[1..3] {
        let failures = broken["data_quality"]["failures"].as_array().unwrap();
        assert_eq!(failures.len(), 1, "{broken}");
        assert_eq!(failures[0]["feature"], json!("amount"));
        assert_eq!(failures[0]["reason"], json!("no_values"));
        assert_eq!(failures[0]["share"], json!(1.0), "every amount had the wrong type");
        assert_eq!(broken["invalid_values"], json!(PER_WINDOW));
        assert_eq!(broken["dataset_drift"], json!(false), "broken data is never drift: {broken}");
        assert_eq!(feature(broken, "code")["drifted"], json!(false));
        assert!(feature(broken, "code")["score"].as_f64().unwrap() > 0.2, "the codes did shift");
        let skipped = broken["skipped"].as_array().unwrap();
        assert!(skipped[0]["reason"].as_str().unwrap().contains("of the wrong type"), "{skipped:?}");
    }

    let requests = r.requests();
    let by = |p: &str| requests.iter().filter(|q| q.uri.starts_with(p)).collect::<Vec<_>>();
    assert!(by("/retrain").is_empty(), "no retrain for a broken pipeline");
    let am = by("/am");
    assert_eq!(am.len(), 2, "firing, then resolved");
    let labels = json!({"alertname": "DriftdDataQuality", "model": MODEL, "severity": "warning", "service": "driftd"});
    assert_eq!(am[0].json()[0]["labels"], labels);
    assert_eq!(am[1].json()[0]["labels"], labels);
    assert_eq!(am[0].json()[0]["annotations"]["failing_features"], json!("amount"));
    let slack = by("/slack");
    assert!(slack[0].json()["text"].as_str().unwrap().contains("DATA QUALITY"));
    assert!(slack[1].json()["text"].as_str().unwrap().contains("Resolved"));
    let pd = by("/pd");
    let (t, res) = (pd[0].json(), pd[1].json());
    assert_eq!((t["event_action"].as_str(), res["event_action"].as_str()), (Some("trigger"), Some("resolve")));
    assert_eq!(t["dedup_key"], res["dedup_key"]);
    assert_eq!(t["payload"]["class"], json!("data-quality"));
    let types: Vec<Value> = by("/wh").iter().map(|q| q.json()["type"].clone()).collect();
    assert_eq!(types, [json!("driftd.data_quality.firing"), json!("driftd.data_quality.resolved")]);
    let wh = by("/wh")[0].json();
    assert_eq!(wh["data"]["failures"][0]["feature"], json!("amount"));
    assert_eq!(
        requests.len(),
        8,
        "nothing but the data-quality alerts: {:?}",
        requests.iter().map(|q| &q.uri).collect::<Vec<_>>()
    );
}
