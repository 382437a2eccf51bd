//! The monitoring stack, real from end to end: the daemon (in-process) on a Tansu broker, a real
//! Prometheus (Debian's package) scraping it with `config/prometheus/rules`, and a real
//! Alertmanager. Every query of every panel (and annotation, and variable) of the
//! dashboards in `dashboards/` must return data; the alerting rules must fire in Prometheus
//! and arrive in Alertmanager. The rules' unit tests and `promtool check` run here too.
//!
//! In the live part the rules' `for:` durations are cut to 0s (same expressions), so the
//! alerts fire in seconds; `promtool test rules` checks the durations themselves.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    episode_logs, free_port, http_get, produce, producer, root, wait_until, Alertmanager, Broker, InProcess, Receiver,
    Reply, TestConfig,
};

const MODEL: &str = "housing";
/// A second model whose producer broke: its `MedInc` arrives as text that is no number.
const BROKEN: &str = "housing_raw";

fn broken(logs: &[String]) -> Vec<String> {
    logs.iter()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v["model"] = json!(BROKEN);
            v["features"]["MedInc"] = json!("n/a");
            v.to_string()
        })
        .collect()
}

fn promtool(args: &[&str]) -> std::process::Output {
    Command::new("promtool")
        .args(args)
        .current_dir(root())
        .output()
        .expect("promtool (Debian's prometheus package) is installed")
}

#[test]
fn rules_and_config_pass_promtool() {
    for args in [
        vec!["check", "config", "config/prometheus/prometheus.yml"],
        vec!["check", "rules", "config/prometheus/rules/driftd.rules.yml"],
        vec!["test", "rules", "config/prometheus/tests/driftd.rules.test.yml"],
    ] {
        let o = promtool(&args);
        assert!(
            o.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn every_alerting_rule_has_a_runbook() {
    let rules = std::fs::read_to_string(root().join("config/prometheus/rules/driftd.rules.yml")).unwrap();
    let runbooks = std::fs::read_to_string(root().join("docs/runbooks.md")).unwrap();
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert_eq!(alerts.len(), 10);
    for a in alerts {
        assert!(runbooks.contains(&format!("\n## {a}\n")), "no runbook section for {a}");
        assert!(rules.contains(&format!("docs/runbooks.md#{}", a.to_lowercase())), "{a}'s runbook_url");
    }
}

#[test]
fn provisioning_points_at_the_dashboards_and_a_prometheus() {
    let dashboards = std::fs::read_to_string(root().join("dashboards/provisioning/dashboards/driftd.yml")).unwrap();
    assert!(dashboards.contains("type: file") && dashboards.contains("path: /etc/grafana/dashboards/driftd"));
    let ds = std::fs::read_to_string(root().join("dashboards/provisioning/datasources/prometheus.yml")).unwrap();
    assert!(ds.contains("type: prometheus"));
    for d in dashboards_json() {
        assert!(d["schemaVersion"].as_u64().unwrap() >= 39, "a current schemaVersion");
        let vars: Vec<&str> =
            d["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert!(vars.contains(&"datasource") && vars.contains(&"model"), "{vars:?}");
        for p in d["panels"].as_array().unwrap() {
            assert_eq!(
                p["datasource"]["uid"],
                json!("${datasource}"),
                "panel {} uses the datasource variable",
                p["title"]
            );
        }
    }
}

fn dashboards_json() -> Vec<Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root().join("dashboards")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "json") {
            out.push(serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap());
        }
    }
    assert_eq!(out.len(), 2, "the fleet overview and the model detail");
    out
}

struct Prometheus {
    child: Child,
    port: u16,
}

impl Prometheus {
    fn start(dir: &Path, target: u16, alertmanager: u16) -> Prometheus {
        let port = free_port();
        // the rules as shipped, with their `for:` cut to 0s
        let rules = std::fs::read_to_string(root().join("config/prometheus/rules/driftd.rules.yml")).unwrap();
        let fast: String = rules
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("for:") {
                    l.split("for:").next().unwrap().to_string() + "for: 0s"
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dir.join("rules.yml"), fast).unwrap();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n\
                 alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"127.0.0.1:{alertmanager}\"]\n\
                 scrape_configs:\n  - job_name: driftd\n    static_configs:\n      - targets: [\"127.0.0.1:{target}\"]\n"
            ),
        )
        .unwrap();
        let child = Command::new("prometheus")
            .args([
                &format!("--config.file={}", dir.join("prometheus.yml").display()),
                &format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
                &format!("--web.listen-address=127.0.0.1:{port}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian's package) is installed");
        let p = Prometheus { child, port };
        wait_until("Prometheus", Duration::from_secs(60), || http_get(port, "/-/ready").filter(|(c, _)| *c == 200));
        p
    }

    fn api(&self, path: &str) -> Value {
        let (code, body) = http_get(self.port, path).unwrap();
        assert_eq!(code, 200, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], json!("success"), "{path}: {body}");
        v["data"].clone()
    }

    fn range(&self, expr: &str, start: f64) -> Vec<Value> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let q = format!("/api/v1/query_range?query={}&start={start}&end={now}&step=1", encode(expr));
        self.api(&q)["result"].as_array().unwrap().clone()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A panel's query as Grafana would send it for one model, every feature.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "5s")
        .replace("$__range", "1h")
        .replace("=~\"$model\"", &format!("=~\"{MODEL}\""))
        .replace("$model", MODEL)
        .replace("$feature", ".+")
}

#[test]
fn every_panel_returns_data_and_the_alerts_reach_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start();
    broker.create_topic("inference-logs", 1);
    let notified = Receiver::start(vec![], Reply::status(200));
    let am = Alertmanager::start(dir.path(), &notified.url("/notify"));
    let dead = free_port(); // nothing listens: every retrain request fails

    let cfg = TestConfig::new()
        .kafka(&broker.bootstrap(), "driftd-monitoring")
        .kafka_option("statistics.interval.ms", "1000")
        .state(&dir.path().join("state"))
        .episode_defaults()
        .section(&format!(
            "[retrain]\npreset = \"webhook\"\nurl = \"http://127.0.0.1:{dead}/retrain\"\nsecret = \"k\"\nmax_attempts = 1\n\
             [[alerts]]\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:{}\"",
            am.port,
        ))
        .model(MODEL, "")
        .section("[models.per_feature.HouseAge]\nstattest = \"ks\"")
        .model(BROKEN, "")
        .write(&dir.path().join("driftd.toml"));
    let daemon = InProcess::start(&cfg);
    let prom = Prometheus::start(dir.path(), daemon.port, am.port);
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64() - 5.0;
    wait_until("the first scrape", Duration::from_secs(30), || {
        let r = prom.api("/api/v1/query?query=up%7Bjob%3D%22driftd%22%7D");
        (r["result"][0]["value"][1] == json!("1")).then_some(())
    });

    // 4 clean windows, 4 drifted ones (the episode fires on the 6th; the last has 88% of
    // features drifted), and 1,600 undecodable messages among them; the broken model's
    // windows alongside
    let mut logs = episode_logs(MODEL, 1000, 4, 5, 0);
    logs.truncate(8000);
    let p = producer(&broker.bootstrap());
    for (i, chunk) in logs.chunks(1000).enumerate() {
        produce(&p, chunk, MODEL, None);
        produce(&p, &broken(chunk), BROKEN, None);
        produce(&p, &vec![format!("not json {i}"); 200], MODEL, None);
        std::thread::sleep(Duration::from_millis(700));
    }
    wait_until("driftd's drift state in Prometheus", Duration::from_secs(60), || {
        let r = prom.api("/api/v1/query?query=driftd_model_drifting%7Bmodel%3D%22housing%22%7D");
        (r["result"][0]["value"][1] == json!("1")).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));

    // every panel, annotation and variable query of every dashboard returns data
    let mut checked = 0;
    for d in dashboards_json() {
        let title = d["title"].as_str().unwrap().to_string();
        let mut exprs: Vec<(String, String)> = Vec::new();
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                exprs.push((
                    format!("{title} / {}", p["title"].as_str().unwrap()),
                    t["expr"].as_str().unwrap().to_string(),
                ));
            }
        }
        for a in d["annotations"]["list"].as_array().unwrap() {
            if let Some(e) = a["expr"].as_str() {
                exprs.push((format!("{title} / annotation {}", a["name"].as_str().unwrap()), e.to_string()));
            }
        }
        for (what, expr) in exprs {
            let q = substitute(&expr);
            let got = prom.range(&q, start);
            assert!(!got.is_empty(), "{what}: `{q}` returned no data");
            checked += 1;
        }
        for v in d["templating"]["list"].as_array().unwrap().iter().filter(|v| v["type"] == json!("query")) {
            let q = substitute(v["query"]["query"].as_str().unwrap());
            let (metric, label) = {
                let inner = q.strip_prefix("label_values(").unwrap().strip_suffix(')').unwrap();
                let (m, l) = inner.rsplit_once(',').unwrap();
                (m.trim().to_string(), l.trim().to_string())
            };
            let values = prom.api(&format!("/api/v1/label/{label}/values?match[]={}", encode(&metric)));
            assert!(!values.as_array().unwrap().is_empty(), "{title}: variable {} has no values", v["name"]);
        }
    }
    assert!(checked >= 15, "{checked} queries");

    // every report link on the dashboards (the drift panels' data links, the model
    // dashboard's link) opens the model's latest window page on this daemon
    let mut links = 0;
    for d in dashboards_json() {
        let vars = d["templating"]["list"].as_array().unwrap();
        assert!(
            vars.iter().any(|v| v["name"] == json!("driftd_url") && v["type"] == json!("textbox")),
            "{}",
            d["title"]
        );
        let panel_links = d["panels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["fieldConfig"]["defaults"]["links"].as_array().cloned().unwrap_or_default());
        for l in panel_links.chain(d["links"].as_array().cloned().unwrap_or_default()) {
            let Some(url) = l["url"].as_str().filter(|u| u.contains("${driftd_url}")) else { continue };
            let url = url
                .replace("${driftd_url}", &format!("http://127.0.0.1:{}", daemon.port))
                .replace("${__field.labels.model}", MODEL)
                .replace("${model}", MODEL);
            let path = url.split_once(&format!(":{}", daemon.port)).unwrap().1;
            let (code, body) = http_get(daemon.port, path).unwrap();
            assert_eq!(code, 200, "{url}: {body}");
            assert!(body.starts_with("<!doctype html>") && body.contains(MODEL), "{url}");
            links += 1;
        }
    }
    assert!(links >= 5, "{links} report links on the dashboards");

    // the alerting rules fire in Prometheus...
    let expected = [
        "DriftdModelDrifting",
        "DriftdDriftShareHigh",
        "DriftdDecodeErrorsHigh",
        "DriftdRetrainFailing",
        "DriftdDataQualityFailing",
    ];
    let firing = |prom: &Prometheus| -> Vec<String> {
        prom.api("/api/v1/alerts")["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["state"] == json!("firing"))
            .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let f = firing(&prom);
        if expected.iter().all(|e| f.iter().any(|x| x == e)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "firing {f:?}, expected {expected:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // ...and arrive in Alertmanager (Prometheus' alerts link back to it by generatorURL;
    // the ones driftd sends itself have none)
    let from_prometheus = |am: &Alertmanager| -> Vec<String> {
        am.all()
            .iter()
            .filter(|a| a["generatorURL"].as_str().is_some_and(|u| u.contains("/graph")))
            .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
            .collect()
    };
    wait_until("the alerts in Alertmanager", Duration::from_secs(60), || {
        let got = from_prometheus(&am);
        expected.iter().all(|e| got.iter().any(|x| x == e)).then_some(())
    });

    // driftd's own data-quality alert reaches Alertmanager too, for the broken model only
    wait_until("driftd's DriftdDataQuality in Alertmanager", Duration::from_secs(60), || {
        let all = am.all();
        let quality: Vec<&Value> =
            all.iter().filter(|a| a["labels"]["alertname"] == json!("DriftdDataQuality")).collect();
        (quality.len() == 1 && quality[0]["labels"]["model"] == json!(BROKEN)).then_some(())
    });

    // driftd stops: DriftdDown fires and reaches Alertmanager
    daemon.stop();
    wait_until("DriftdDown in Alertmanager", Duration::from_secs(60), || {
        from_prometheus(&am).iter().any(|a| a == "DriftdDown").then_some(())
    });
}
