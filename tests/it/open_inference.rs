//! Open Inference Protocol (V2) payloads through the real binary. `replay --format
//! open-inference` of requests and responses (a tensor per column or one 2-D tensor, flat
//! or nested data, a response before or after its request) gives the very reports
//! `replay` gives on the same rows in driftd's own layout; each bad-input case refuses its
//! whole message, counted by reason, and changes no window; halves without their other are
//! events all the same, counted. Through a Tansu broker: MLServer's two topics (the
//! request's model in the `mlserver-model` header and its id in the key; the response's in
//! its body) joined into one event per inference.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    assert_same_windows, fmt_ms, free_port, metric, produce_with_headers, producer, replay_with_args, root, rows,
    wait_until, Broker, Process, FEATURES,
};

const ROWS_PER_REQUEST: usize = 20;
/// 2021-06-01T00:00:00Z
const START_MS: i64 = 1_622_505_600_000;

/// The analysis period's rows: time, feature cells, and the model's probability
/// (`y_pred_proba`), which the reference (below) names `prediction`.
fn analysis() -> Vec<(String, Vec<f64>, f64)> {
    analysis_with("y_pred_proba")
}

/// The analysis period's rows with the model's output in `column`.
fn analysis_with(column: &str) -> Vec<(String, Vec<f64>, f64)> {
    let text = std::fs::read_to_string(root().join("datasets/california_housing_analysis.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let proba = header.iter().position(|h| *h == column).unwrap();
    let probas: Vec<f64> = text.lines().skip(1).map(|l| l.split(',').nth(proba).unwrap().parse().unwrap()).collect();
    rows("california_housing_analysis.csv")
        .into_iter()
        .zip(probas)
        .map(|(r, p)| (r.ts, r.values.iter().map(|v| v.parse().unwrap()).collect(), p))
        .collect()
}

/// The reference with its probability column named `prediction`, and a config for it.
fn config(dir: &Path, kafka: &str) -> PathBuf {
    config_with(dir, kafka, "y_pred_proba", "window = { size = \"1m\" }\nprediction_column = 1")
}

/// `config` with the reference's column `prediction` names, and more model keys.
fn config_with(dir: &Path, kafka: &str, prediction: &str, model: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("datasets/california_housing_reference.csv")).unwrap();
    let reference = dir.join("reference.csv");
    let header_end = text.find('\n').unwrap();
    let header =
        text[..header_end].split(',').map(|c| if c == prediction { "prediction" } else { c }).collect::<Vec<_>>();
    std::fs::write(&reference, format!("{}{}", header.join(","), &text[header_end..])).unwrap();
    let feats: Vec<String> = FEATURES.iter().chain(["prediction"].iter()).map(|f| format!("\"{f}\"")).collect();
    let path = dir.join("driftd.toml");
    std::fs::write(
        &path,
        format!(
            "[kafka]\n{kafka}\n[[models]]\nname = \"housing\"\nreference = \"{}\"\nfeatures = [{}]\n{model}\n",
            reference.display(),
            feats.join(", ")
        ),
    )
    .unwrap();
    path
}

/// One request's rows as V2 JSON, in one of three shapes: a tensor per column (flat
/// data), one 2-D tensor in the reference's column order (nested), or a tensor per column
/// of nested `[n, 1]` data.
fn request(id: &str, ts: &str, rows: &[(String, Vec<f64>, f64)], shape: usize) -> Value {
    let n = rows.len();
    let inputs: Vec<Value> = match shape {
        0 => FEATURES
            .iter()
            .enumerate()
            .map(|(j, f)| json!({"name": f, "shape": [n, 1], "datatype": "FP64", "data": rows.iter().map(|r| r.1[j]).collect::<Vec<_>>()}))
            .collect(),
        1 => vec![json!({"name": "input-0", "shape": [n, FEATURES.len()], "datatype": "FP64",
                         "data": rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>()})],
        _ => FEATURES
            .iter()
            .enumerate()
            .map(|(j, f)| json!({"name": f, "shape": [n, 1], "datatype": "FP32", "data": rows.iter().map(|r| vec![r.1[j]]).collect::<Vec<_>>()}))
            .collect(),
    };
    json!({"id": id, "model_name": "housing", "parameters": {"timestamp": ts}, "inputs": inputs})
}

/// The report's `prediction` feature.
fn prediction(report: &Value) -> &Value {
    report["features"].as_array().unwrap().iter().find(|f| f["name"] == "prediction").expect("prediction judged")
}

/// Its response: a classifier's probabilities of the two classes, `[n, 2]`.
fn response(id: &str, ts: &str, rows: &[(String, Vec<f64>, f64)]) -> Value {
    let probas: Vec<[f64; 2]> = rows.iter().map(|r| [1.0 - r.2, r.2]).collect();
    json!({"id": id, "model_name": "housing", "model_version": "1", "parameters": {"timestamp": ts},
           "outputs": [{"name": "predict_proba", "shape": [rows.len(), 2], "datatype": "FP64", "data": probas}]})
}

/// The same rows, one line each in driftd's layout, at their request's time.
fn flat(ts: &str, row: &(String, Vec<f64>, f64)) -> String {
    let features: serde_json::Map<String, Value> =
        FEATURES.iter().zip(&row.1).map(|(f, v)| (f.to_string(), json!(v))).collect();
    json!({"model": "housing", "timestamp": ts, "features": features, "prediction": row.2}).to_string()
}

/// Requests of 20 rows, one every 2 s, and their responses, the response first for every
/// third and after the next request for every third; and the same rows in driftd's layout.
fn both_files(rows: &[(String, Vec<f64>, f64)]) -> (Vec<String>, Vec<String>) {
    let (mut v2, mut plain) = (Vec::new(), Vec::new());
    let mut late_response: Option<String> = None;
    for (b, batch) in rows.chunks(ROWS_PER_REQUEST).enumerate() {
        let (id, ts) = (format!("req-{b}"), fmt_ms(START_MS + 2_000 * b as i64));
        let (req, resp) = (request(&id, &ts, batch, b % 3).to_string(), response(&id, &ts, batch).to_string());
        match b % 3 {
            0 => v2.extend([resp, req]),
            1 => {
                // its response comes after the next request
                v2.push(req);
                late_response = Some(resp);
            }
            _ => {
                v2.push(req);
                v2.extend(late_response.take());
                v2.push(resp);
            }
        }
        plain.extend(batch.iter().map(|r| flat(&ts, r)));
    }
    v2.extend(late_response);
    (v2, plain)
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

fn replay_v2(cfg: &Path, input: &Path) -> (Vec<Value>, Value) {
    replay_with_args(cfg, input, &["--format", "open-inference"])
}

#[test]
fn v2_batches_give_the_reports_of_the_same_rows_in_driftds_layout() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let rows = analysis();
    let (v2, plain) = both_files(&rows);
    let (v2_reports, v2_summary) = replay_v2(&cfg, &write(dir.path(), "v2.jsonl", &v2));
    let (plain_reports, plain_summary) = replay_with_args(&cfg, &write(dir.path(), "plain.jsonl", &plain), &[]);
    assert_eq!(v2_summary["events"], 8232, "{v2_summary}");
    assert_eq!(plain_summary["events"], 8232);
    assert_eq!(v2_summary["messages"], 2 * rows.len().div_ceil(ROWS_PER_REQUEST) as u64);
    assert_eq!(v2_summary["decode_errors"], json!({}), "{v2_summary}");
    assert_eq!(v2_summary["late_events"], 0, "{v2_summary}");
    // every half met its other: one event per inference, with its prediction
    let pairs = rows.len().div_ceil(ROWS_PER_REQUEST) as u64;
    assert_eq!(v2_summary["pairing"], json!({"joined": 2 * pairs, "unpaired_requests": 0, "unpaired_responses": 0}));
    assert!(v2_reports.len() >= 2, "{} windows", v2_reports.len());
    assert_eq!(v2_reports, plain_reports, "the same scores, the same verdicts");
    // each event has its prediction: the response's column 1, the positive class
    let with_prediction: u64 = v2_reports.iter().map(|r| prediction(r)["current_count"].as_u64().unwrap()).sum();
    assert_eq!(with_prediction, 8232);
}

#[test]
fn each_bad_message_is_refused_whole_by_reason_and_changes_no_window() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "max_batch_rows = 50");
    let rows = analysis();
    let (v2, _) = both_files(&rows);
    let tensor = |name: &str, shape: &str, datatype: &str, data: &str| {
        format!(r#"{{"name": "{name}", "shape": {shape}, "datatype": "{datatype}", "data": {data}}}"#)
    };
    let request = |id: &str, tensors: &[String]| {
        format!(r#"{{"id": "{id}", "model_name": "housing", "inputs": [{}]}}"#, tensors.join(", "))
    };
    let ones = |n: usize| format!("[{}]", vec!["1.5"; n].join(", "));
    let bad = [
        ("bad_tensor", request("b1", &[tensor("MedInc", "[3, 1]", "FP64", &ones(2))])),
        ("bad_tensor", request("b2", &[tensor("MedInc", "[2]", "FP64", &ones(2)), tensor("HouseAge", "[3]", "FP64", &ones(3))])),
        // a 2-D input as wide as no feature list: refused when its rows are taken (alone, at
        // the end: it has no response)
        ("bad_tensor", request("b3", &[tensor("input-0", "[2, 5]", "FP64", &ones(10))])),
        ("bad_datatype", request("b4", &[tensor("MedInc", "[2]", "FP128", &ones(2))])),
        ("batch_too_large", request("b5", &[tensor("MedInc", "[51]", "FP64", &ones(51))])),
        (
            "bad_base64",
            request("b6", &[r#"{"name": "note", "shape": [1], "datatype": "BYTES", "parameters": {"content_type": "base64"}, "data": ["%%%"]}"#.to_string()]),
        ),
        ("wrong_type", request("b7", &[tensor("MedInc", "[2]", "FP64", r#"["a", "b"]"#)])),
        ("wrong_type", request("b8", &[tensor("MedInc", "[2]", "BOOL", "[2, 3]")])),
        ("not_json", r#"{"inputs": [{"name": "MedInc", "#.to_string()),
        ("missing_model", r#"{"id": "b9", "inputs": [{"name": "MedInc", "shape": [1], "datatype": "FP64", "data": [1]}]}"#.to_string()),
        ("unknown_model", r#"{"id": "b10", "model_name": "other", "inputs": [{"name": "MedInc", "shape": [1], "datatype": "FP64", "data": [1]}]}"#.to_string()),
    ];
    let mut mixed = Vec::new();
    for (i, line) in v2.iter().enumerate() {
        mixed.push(line.clone());
        if i % 200 == 0 {
            mixed.extend(bad.iter().map(|(_, l)| l.replace(r#""id": "b"#, &format!(r#""id": "{i}-b"#))));
        }
    }
    let rounds = v2.len().div_ceil(200) as u64;
    let (clean, _) = replay_v2(&cfg, &write(dir.path(), "clean.jsonl", &v2));
    let (reports, summary) = replay_v2(&cfg, &write(dir.path(), "mixed.jsonl", &mixed));
    assert_eq!(reports, clean, "bad messages change no window");
    assert_eq!(summary["events"], 8232, "{summary}");
    assert_eq!(summary["messages"], v2.len() as u64 + rounds * bad.len() as u64);
    for (reason, _) in &bad {
        let expected = bad.iter().filter(|(r, _)| r == reason).count() as u64 * rounds;
        assert_eq!(summary["decode_errors"][reason], expected, "{reason}: {summary}");
    }
    // the wide request waited for a response that never came
    assert_eq!(summary["pairing"]["unpaired_requests"], rounds, "{summary}");
}

#[test]
fn halves_without_their_other_are_events_all_the_same_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let rows = analysis();
    let (v2, _) = both_files(&rows);
    // the request of every 7th inference lost, and the response of every 11th (not both)
    let batch_of = |v: &Value| v["id"].as_str().unwrap().trim_start_matches("req-").parse::<usize>().unwrap();
    let request_lost = |b: usize| b % 7 == 3;
    let response_lost = |b: usize| b % 11 == 5 && !request_lost(b);
    let (mut kept, mut lost_requests, mut lost_responses) = (Vec::new(), 0u64, 0u64);
    let (mut rows_without_prediction, mut rows_of_lost_requests) = (0u64, 0u64);
    for line in &v2 {
        let v: Value = serde_json::from_str(line).unwrap();
        let b = batch_of(&v);
        if v.get("inputs").is_some() && request_lost(b) {
            lost_requests += 1;
            rows_of_lost_requests += v["inputs"][0]["shape"][0].as_u64().unwrap();
        } else if v.get("outputs").is_some() && response_lost(b) {
            lost_responses += 1;
            rows_without_prediction += v["outputs"][0]["shape"][0].as_u64().unwrap();
        } else {
            kept.push(line.clone());
        }
    }
    let (reports, summary) = replay_v2(&cfg, &write(dir.path(), "halves.jsonl", &kept));
    assert!(lost_requests > 0 && lost_responses > 0);
    assert_eq!(summary["events"], 8232, "one event per inference either way: {summary}");
    assert_eq!(summary["late_events"], 0, "windows wait for the halves waiting: {summary}");
    assert_eq!(summary["pairing"]["unpaired_requests"], lost_responses, "{summary}");
    assert_eq!(summary["pairing"]["unpaired_responses"], lost_requests, "{summary}");
    let predictions: u64 = reports.iter().map(|r| prediction(r)["current_count"].as_u64().unwrap()).sum();
    assert_eq!(predictions, 8232 - rows_without_prediction);
    // a response alone has no features: they count as missing
    let missing: f64 = reports
        .iter()
        .map(|r| {
            let f = r["features"].as_array().unwrap().iter().find(|f| f["name"] == "MedInc").unwrap();
            f["current_missing_share"].as_f64().unwrap() * r["events"].as_f64().unwrap()
        })
        .sum();
    assert_eq!(missing.round() as u64, rows_of_lost_requests);
}

/// The daemon's `[kafka]` on `topics`, each read as `open-inference` (`extra`: more keys),
/// then its `[server]` on `port`, and its state and reports under `dir`.
fn daemon_kafka(broker: &Broker, dir: &Path, port: u16, topics: &[&str], extra: &str) -> String {
    let quoted: Vec<String> = topics.iter().map(|t| format!("\"{t}\"")).collect();
    let formats: String = quoted.iter().map(|t| format!("{t} = \"open-inference\"\n")).collect();
    format!(
        "brokers = \"{}\"\ntopics = [{}]\ngroup_id = \"driftd-v2\"\n{extra}\n[kafka.formats]\n{formats}\
         [kafka.options]\n\"session.timeout.ms\" = \"6000\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n\
         [state]\ndir = \"{}\"\n[reports]\nfile = \"{}\"",
        broker.bootstrap(),
        quoted.join(", "),
        dir.join("state").display(),
        dir.join("reports.jsonl").display()
    )
}

/// MLServer's Kafka server: requests on `mlserver-input` (the model in the `mlserver-model`
/// header, the id in the key, no model or id in the body), responses on `mlserver-output`
/// (model, version and id in the body, CloudEvents headers), the time the Kafka message's.
/// One request's response never comes and one response has no request: both are events,
/// counted apart once `pair_timeout` passes.
#[test]
fn mlserver_topics_through_the_broker_one_event_per_inference() {
    let broker = Broker::start();
    for topic in ["mlserver-input", "mlserver-output"] {
        broker.create_topic(topic, 2);
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let kafka =
        daemon_kafka(&broker, dir.path(), port, &["mlserver-input", "mlserver-output"], "pair_timeout = \"3s\"");
    // the response's output is the class (`y_pred`); windows close once the traffic stops
    let cfg = config_with(dir.path(), &kafka, "y_pred", "window = { size = \"7d\" }\nidle_timeout = \"8s\"");
    let _daemon = Process::start(&cfg, port);
    let rows = analysis();
    let y_pred: Vec<i64> = rows.iter().map(|r| i64::from(r.2 >= 0.5)).collect();
    let p = producer(&broker.bootstrap());
    let batches: Vec<_> = rows[..200].chunks(ROWS_PER_REQUEST).enumerate().collect();
    for (b, batch) in &batches {
        let id = format!("mlserver-{b}");
        let inputs: Vec<Value> = FEATURES
            .iter()
            .enumerate()
            .map(|(j, f)| {
                json!({"name": f, "shape": [batch.len(), 1], "datatype": "FP64",
                       "parameters": {"content_type": "np"}, "data": batch.iter().map(|r| r.1[j]).collect::<Vec<_>>()})
            })
            .collect();
        let req = json!({"inputs": inputs, "parameters": {"content_type": "pd"}});
        produce_with_headers(&p, "mlserver-input", Some(&id), &[("mlserver-model", "housing")], req.to_string());
        if *b == 3 {
            continue; // its response never comes
        }
        let first = b * ROWS_PER_REQUEST;
        let resp = json!({"model_name": "housing", "model_version": "v1", "id": id, "parameters": {},
            "outputs": [{"name": "predict", "shape": [batch.len(), 1], "datatype": "INT64",
                         "parameters": {"content_type": "np"}, "data": &y_pred[first..first + batch.len()]}]});
        let ce = [
            ("Ce-Id", id.as_str()),
            ("Ce-Requestid", id.as_str()),
            ("Ce-Modelid", "housing"),
            ("Ce-Type", "io.seldon.serving.inference.response"),
        ];
        produce_with_headers(&p, "mlserver-output", Some(&id), &ce, resp.to_string());
    }
    // a response whose request was never seen
    let orphan = json!({"model_name": "housing", "id": "orphan",
        "outputs": [{"name": "predict", "shape": [20, 1], "datatype": "INT64", "data": vec![1; 20]}]});
    produce_with_headers(&p, "mlserver-output", Some("orphan"), &[], orphan.to_string());
    let reports_file = dir.path().join("reports.jsonl");
    let reports = wait_until("the window of every inference", Duration::from_secs(90), || {
        let all = crate::helpers::reports(&reports_file);
        (all.iter().map(|r| r["events"].as_u64().unwrap()).sum::<u64>() >= 220).then_some(all)
    });
    let events: u64 = reports.iter().map(|r| r["events"].as_u64().unwrap()).sum();
    assert_eq!(events, 200 + 20, "each inference once: 10 requests of 20 rows, and the orphan response's 20");
    let predictions: u64 = reports.iter().map(|r| prediction(r)["current_count"].as_u64().unwrap()).sum();
    assert_eq!(predictions, 200 - 20 + 20, "every row with a response has its prediction");
    let joined = metric(port, "driftd_pairs_joined_total").unwrap();
    assert_eq!(joined, 18.0, "9 requests and their responses");
    assert_eq!(metric(port, "driftd_unpaired_total{side=\"request\"}"), Some(1.0));
    assert_eq!(metric(port, "driftd_unpaired_total{side=\"response\"}"), Some(1.0));
    assert_eq!(metric(port, "driftd_events_total{model=\"housing\"}"), Some(220.0));
    // the same rows in driftd's layout, replayed: the same values in the same bins
    let mut plain: Vec<String> = Vec::new();
    for (i, r) in rows[..200].iter().enumerate() {
        let features: serde_json::Map<String, Value> =
            FEATURES.iter().zip(&r.1).map(|(f, v)| (f.to_string(), json!(v))).collect();
        let mut line = json!({"model": "housing", "timestamp": "2021-06-01T00:00:00Z", "features": features});
        if !(60..80).contains(&i) {
            line["prediction"] = json!(y_pred[i]);
        }
        plain.push(line.to_string());
    }
    for _ in 0..20 {
        plain.push(
            json!({"model": "housing", "timestamp": "2021-06-01T00:00:00Z", "features": {}, "prediction": 1})
                .to_string(),
        );
    }
    let (replayed, _) = replay_with_args(&cfg, &write(dir.path(), "plain.jsonl", &plain), &[]);
    let bins = |reports: &[Value], name: &str| -> Vec<u64> {
        let mut sum = Vec::new();
        for r in reports {
            let f = r["features"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap();
            let current = f["distribution"]["current"].as_array().unwrap();
            sum.resize(current.len(), 0);
            for (s, c) in sum.iter_mut().zip(current) {
                *s += c.as_u64().unwrap();
            }
        }
        sum
    };
    for name in FEATURES.iter().chain(["prediction"].iter()) {
        assert_eq!(bins(&reports, name), bins(&replayed, name), "{name}");
    }
}

/// A real MLServer (1.7.1 from PyPI, `DRIFTD_MLSERVER_VENV`) serving a scikit-learn model
/// with its Kafka server on Tansu; a client sends MLServer's own PandasCodec requests; the
/// process group is ended when dropped.
struct MlServer {
    child: std::process::Child,
}

impl Drop for MlServer {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = std::process::Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A real MLServer, its Kafka server on Tansu, serving a scikit-learn model: 40 requests of
/// 20 rows encoded by MLServer's PandasCodec, sent as a client does (the model in the
/// `mlserver-model` header, the id as the key), answered by MLServer on `mlserver-output`.
/// driftd's windows hold every inference once with the prediction MLServer gave, and equal
/// `replay` of the same rows and predictions in driftd's own layout.
#[test]
#[ignore = "needs MLServer 1.7.1 (DRIFTD_MLSERVER_VENV); run by scripts/test"]
fn mlserver_serving_a_model_is_monitored_one_event_per_inference() {
    use std::os::unix::process::CommandExt as _;
    let venv = crate::helpers::tool("DRIFTD_MLSERVER_VENV", "mlserver-venv");
    let python = venv.join("bin/python");
    let broker = Broker::start();
    for topic in ["mlserver-input", "mlserver-output"] {
        broker.create_topic(topic, 2);
    }
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("model");
    let trained = std::process::Command::new(&python)
        .arg(root().join("tests/mlserver/train.py"))
        .arg(root().join("datasets/california_housing_reference.csv"))
        .arg(&model_dir)
        .status()
        .unwrap();
    assert!(trained.success());
    let log = dir.path().join("mlserver.log");
    let _mlserver = MlServer {
        child: std::process::Command::new(venv.join("bin/mlserver"))
            .args(["start", model_dir.to_str().unwrap()])
            .env("MLSERVER_KAFKA_ENABLED", "true")
            .env("MLSERVER_KAFKA_SERVERS", broker.bootstrap())
            .env("MLSERVER_HTTP_PORT", free_port().to_string())
            .env("MLSERVER_GRPC_PORT", free_port().to_string())
            .env("MLSERVER_METRICS_PORT", free_port().to_string())
            .env("MLSERVER_PARALLEL_WORKERS", "0")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::options().append(true).open(&log).unwrap())
            .process_group(0)
            .spawn()
            .unwrap(),
    };
    // its consumer starts at the latest offset: requests are sent once it reads
    wait_until("MLServer's Kafka consumer", Duration::from_secs(180), || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("Reading messages from consumer").then_some(())
    });
    let port = free_port();
    let kafka = daemon_kafka(&broker, dir.path(), port, &["mlserver-input", "mlserver-output"], "");
    let feats: Vec<String> = FEATURES.iter().chain(["prediction"].iter()).map(|f| format!("\"{f}\"")).collect();
    let cfg = dir.path().join("driftd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[kafka]\n{kafka}\n[[models]]\nname = \"housing\"\nreference = \"{}\"\nfeatures = [{}]\n\
             window = {{ size = \"1h\" }}\nidle_timeout = \"5s\"\n",
            model_dir.join("reference.csv").display(),
            feats.join(", ")
        ),
    )
    .unwrap();
    let _daemon = Process::start(&cfg, port);
    let sent = dir.path().join("sent.jsonl");
    let client = std::process::Command::new(&python)
        .arg(root().join("tests/mlserver/send.py"))
        .arg(broker.bootstrap())
        .arg(root().join("datasets/california_housing_analysis.csv"))
        .args(["40", "20"])
        .arg(&sent)
        .status()
        .unwrap();
    assert!(client.success(), "the client sent its requests and read MLServer's 40 responses");
    let reports_file = dir.path().join("reports.jsonl");
    let reports = wait_until("the windows of 800 inferences", Duration::from_secs(120), || {
        let all = crate::helpers::reports(&reports_file);
        (all.iter().map(|r| r["events"].as_u64().unwrap()).sum::<u64>() >= 800).then_some(all)
    });
    std::thread::sleep(Duration::from_secs(1));
    let events: u64 = reports.iter().map(|r| r["events"].as_u64().unwrap()).sum();
    assert_eq!(events, 800, "each inference once");
    let predictions: u64 = reports.iter().map(|r| prediction(r)["current_count"].as_u64().unwrap()).sum();
    assert_eq!(predictions, 800, "each with the prediction MLServer gave");
    assert_eq!(metric(port, "driftd_pairs_joined_total"), Some(80.0));
    assert_eq!(metric(port, "driftd_unpaired_total{side=\"request\"}"), Some(0.0));
    assert_eq!(metric(port, "driftd_unpaired_total{side=\"response\"}"), Some(0.0));
    // the same rows and MLServer's predictions in driftd's layout, at the requests' times
    let mut plain = Vec::new();
    for line in std::fs::read_to_string(&sent).unwrap().lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let predictions = r["predictions"].as_array().unwrap();
        for (row, p) in r["rows"].as_array().unwrap().iter().zip(predictions) {
            let features: serde_json::Map<String, Value> =
                FEATURES.iter().zip(row.as_array().unwrap()).map(|(f, v)| (f.to_string(), v.clone())).collect();
            plain.push(
                json!({"model": "housing", "timestamp": r["ts_ms"], "features": features, "prediction": p}).to_string(),
            );
        }
    }
    assert_eq!(plain.len(), 800);
    let (replayed, _) = replay_with_args(&cfg, &write(dir.path(), "plain.jsonl", &plain), &[]);
    assert_same_windows(&reports, &replayed);
}

/// The daemon's windows once they hold 600 inferences (30 requests of 20 rows, one every
/// 2 s, and their responses): each inference once, with its prediction, 60 halves joined.
fn the_600_inferences_once_each(dir: &Path, port: u16) -> Vec<Value> {
    let reports_file = dir.join("reports.jsonl");
    let reports = wait_until("the windows of 600 inferences", Duration::from_secs(90), || {
        let all = crate::helpers::reports(&reports_file);
        (all.iter().map(|r| r["events"].as_u64().unwrap()).sum::<u64>() >= 600).then_some(all)
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(reports.iter().map(|r| r["events"].as_u64().unwrap()).sum::<u64>(), 600);
    let predictions: u64 = reports.iter().map(|r| prediction(r)["current_count"].as_u64().unwrap()).sum();
    assert_eq!(predictions, 600, "each with its prediction");
    assert_eq!(metric(port, "driftd_pairs_joined_total"), Some(60.0));
    reports
}

/// `reports` are the windows `replay` gives of the analysis period's first 600 rows in
/// driftd's layout, 20 rows every 2 s, with `y_pred` the prediction.
fn assert_windows_of_the_first_600_rows(reports: &[Value], dir: &Path, cfg: &Path) {
    let rows = analysis_with("y_pred");
    let mut plain = Vec::new();
    for (b, batch) in rows[..600].chunks(20).enumerate() {
        let ts = fmt_ms(START_MS + 2_000 * b as i64);
        plain.extend(batch.iter().map(|r| flat(&ts, r)));
    }
    let (replayed, _) = replay_with_args(cfg, &write(dir, "plain.jsonl", &plain), &[]);
    assert_same_windows(reports, &replayed);
}

/// KServe's payload logger as the CloudEvents SDK's Kafka binding writes it
/// (`tests/payloads/kserve_cloudevents.py`, cloudevents 1.12.0 from PyPI): binary mode (`ce_*`
/// headers) and structured mode (the event as JSON), V2 and V1 bodies, on one topic through
/// Tansu. Every inference once with its prediction, the windows equal to `replay` of the
/// same rows in driftd's layout.
#[test]
fn kserve_cloudevents_from_the_sdk_binary_and_structured() {
    let python = crate::helpers::tool("DRIFTD_CLOUDEVENTS_PYTHON", "cloudevents-venv/bin/python");
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let made = std::process::Command::new(&python)
        .arg(root().join("tests/payloads/kserve_cloudevents.py"))
        .arg(root().join("datasets/california_housing_analysis.csv"))
        .args(["30", "20"])
        .arg(&events)
        .status()
        .unwrap();
    assert!(made.success());
    let broker = Broker::start();
    broker.create_topic("kserve-logs", 1);
    let port = free_port();
    let kafka = daemon_kafka(&broker, dir.path(), port, &["kserve-logs"], "");
    let cfg = config_with(dir.path(), &kafka, "y_pred", "window = { size = \"1m\" }\nidle_timeout = \"5s\"");
    let _daemon = Process::start(&cfg, port);
    let p = producer(&broker.bootstrap());
    let lines = std::fs::read_to_string(&events).unwrap();
    for line in lines.lines() {
        let m: Value = serde_json::from_str(line).unwrap();
        let headers: Vec<(&str, &str)> =
            m["headers"].as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
        // the SDK's binding sets no key by default
        produce_with_headers(&p, "kserve-logs", None, &headers, m["value"].as_str().unwrap());
    }
    let reports = the_600_inferences_once_each(dir.path(), port);
    assert_eq!(metric(port, "driftd_decode_errors_total{reason=\"wrong_type\"}"), Some(0.0));
    assert_windows_of_the_first_600_rows(&reports, dir.path(), &cfg);
}

/// Seldon Core 2's topics, `seldon.default.model.housing.inputs|outputs` (2 partitions each,
/// keyed by request id), holding V2 protobuf messages made by MLServer's own converters
/// (`tests/payloads/seldon_protobuf.py`, mlserver 1.7.1 from PyPI): a tensor per column (with a
/// text column no model monitors) or one 2-D tensor, values in `contents` or in the raw
/// fields. Every inference once with its prediction, the windows equal to `replay` of the
/// same rows in driftd's layout; a message that is not protobuf is refused by reason.
#[test]
fn seldon_protobuf_from_mlservers_converters_contents_and_raw() {
    use base64::Engine as _;
    let python = crate::helpers::tool("DRIFTD_MLSERVER_VENV", "mlserver-venv").join("bin/python");
    let dir = tempfile::tempdir().unwrap();
    let messages = dir.path().join("messages.jsonl");
    let made = std::process::Command::new(&python)
        .arg(root().join("tests/payloads/seldon_protobuf.py"))
        .arg(root().join("datasets/california_housing_analysis.csv"))
        .args(["30", "20"])
        .arg(&messages)
        .status()
        .unwrap();
    assert!(made.success());
    let topics = ["seldon.default.model.housing.inputs", "seldon.default.model.housing.outputs"];
    let broker = Broker::start();
    for topic in topics {
        broker.create_topic(topic, 2);
    }
    let port = free_port();
    let kafka = daemon_kafka(&broker, dir.path(), port, &topics, "");
    let cfg = config_with(dir.path(), &kafka, "y_pred", "window = { size = \"1m\" }\nidle_timeout = \"5s\"");
    let _daemon = Process::start(&cfg, port);
    let p = producer(&broker.bootstrap());
    let lines = std::fs::read_to_string(&messages).unwrap();
    for line in lines.lines() {
        let m: Value = serde_json::from_str(line).unwrap();
        let value = base64::engine::general_purpose::STANDARD.decode(m["value"].as_str().unwrap()).unwrap();
        produce_with_headers(&p, m["topic"].as_str().unwrap(), m["key"].as_str(), &[], value);
    }
    // a length past the message's end: not protobuf
    produce_with_headers(&p, topics[0], Some("cut"), &[], [0x2a_u8, 0xff, 0x01]);
    let reports = the_600_inferences_once_each(dir.path(), port);
    assert_eq!(metric(port, "driftd_decode_errors_total{reason=\"bad_protobuf\"}"), Some(1.0));
    assert_windows_of_the_first_600_rows(&reports, dir.path(), &cfg);
}

/// SageMaker Data Capture records as an endpoint writes them to S3 (by AWS's documented
/// format; no SageMaker here): 20 rows a record, CSV in every other one and BASE64-encoded
/// JSON in the rest, the output beside the input. `replay --format sagemaker-capture`
/// gives the reports of the same rows in driftd's layout.
#[test]
fn sagemaker_capture_records_replay_like_the_same_rows() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let rows = analysis();
    let (mut records, mut plain) = (Vec::new(), Vec::new());
    for (b, batch) in rows.chunks(ROWS_PER_REQUEST).enumerate() {
        let ts = fmt_ms(START_MS + 2_000 * b as i64);
        let (input, output) = if b % 2 == 0 {
            let csv: Vec<String> =
                batch.iter().map(|r| r.1.iter().map(f64::to_string).collect::<Vec<_>>().join(",")).collect();
            let out: Vec<String> = batch.iter().map(|r| format!("{},{}", 1.0 - r.2, r.2)).collect();
            (
                json!({"observedContentType": "text/csv", "mode": "INPUT", "data": csv.join("\n"), "encoding": "CSV"}),
                json!({"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT", "data": out.join("\n"), "encoding": "CSV"}),
            )
        } else {
            let body = json!({"instances": batch.iter().map(|r| r.1.clone()).collect::<Vec<_>>()}).to_string();
            let out = json!({"predictions": batch.iter().map(|r| [1.0 - r.2, r.2]).collect::<Vec<_>>()}).to_string();
            (
                json!({"observedContentType": "application/json", "mode": "INPUT",
                       "data": base64::engine::general_purpose::STANDARD.encode(body), "encoding": "BASE64"}),
                json!({"observedContentType": "application/json", "mode": "OUTPUT", "data": out, "encoding": "JSON"}),
            )
        };
        records.push(
            json!({"captureData": {"endpointInput": input, "endpointOutput": output},
                   "eventMetadata": {"eventId": format!("e-{b}"), "inferenceTime": ts}, "eventVersion": "0"})
            .to_string(),
        );
        plain.extend(batch.iter().map(|r| flat(&ts, r)));
    }
    let capture = write(dir.path(), "capture.jsonl", &records);
    let (reports, summary) = replay_with_args(&cfg, &capture, &["--format", "sagemaker-capture"]);
    let (expected, _) = replay_with_args(&cfg, &write(dir.path(), "plain.jsonl", &plain), &[]);
    assert_eq!(summary["events"], 8232, "{summary}");
    assert_eq!(summary["decode_errors"], json!({}), "{summary}");
    assert_eq!(reports, expected);
}
