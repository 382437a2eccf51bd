//! Helpers shared by the integration tests: inference logs built from `datasets/`, the
//! binary, and a recording HTTP receiver.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::{json, Value};

pub const FEATURES: [&str; 8] =
    ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"];

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn reference_csv() -> PathBuf {
    root().join("datasets/california_housing_reference.csv")
}

pub fn driftd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_driftd")).args(args).current_dir(root()).output().unwrap()
}

/// A dataset's rows: the timestamp (RFC 3339) and the features' cells as written.
pub struct Row {
    pub ts: String,
    pub values: Vec<String>,
}

pub fn rows(file: &str) -> Vec<Row> {
    let text = std::fs::read_to_string(root().join("datasets").join(file)).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let idx: Vec<usize> = FEATURES.iter().map(|f| header.iter().position(|h| h == f).unwrap()).collect();
    let ts = header.iter().position(|h| *h == "timestamp").unwrap();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            Row { ts: cells[ts].replace(' ', "T") + "Z", values: idx.iter().map(|i| cells[*i].to_string()).collect() }
        })
        .collect()
}

/// One inference log for `model` with the row's values at time `ts`.
pub fn log_line(model: &str, ts: &str, values: &[String]) -> String {
    let feats: Vec<String> = FEATURES.iter().zip(values).map(|(f, v)| format!("\"{f}\": {v}")).collect();
    format!("{{\"model\": \"{model}\", \"timestamp\": \"{ts}\", \"features\": {{{}}}}}", feats.join(", "))
}

/// The analysis period's rows as logs, at their own timestamps.
pub fn analysis_logs(model: &str) -> Vec<String> {
    rows("california_housing_analysis.csv").iter().map(|r| log_line(model, &r.ts, &r.values)).collect()
}

/// A drift episode in `windows` of `per_window` events, one event per minute from
/// 2026-11-01: `stable` windows drawn from the reference period, `drifting` windows from
/// the analysis period, then `recovered` stable windows again.
pub fn episode_logs(model: &str, per_window: usize, stable: usize, drifting: usize, recovered: usize) -> Vec<String> {
    let reference = rows("california_housing_reference.csv");
    let analysis = rows("california_housing_analysis.csv");
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut draw = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let start_ms: i64 = 1_793_491_200_000; // 2026-11-01T00:00:00Z
    let mut out = Vec::new();
    let push = |values: &[String], out: &mut Vec<String>| {
        let ts = fmt_ms(start_ms + out.len() as i64 * 60_000);
        out.push(log_line(model, &ts, values));
    };
    for _ in 0..stable * per_window {
        let r = &reference[draw(reference.len())];
        push(&r.values, &mut out);
    }
    // the analysis period's last rows: the furthest from the reference
    let tail = &analysis[analysis.len().saturating_sub(drifting * per_window)..];
    for r in tail {
        push(&r.values, &mut out);
    }
    for _ in 0..recovered * per_window {
        let r = &reference[draw(reference.len())];
        push(&r.values, &mut out);
    }
    out
}

/// RFC 3339 (UTC, seconds) for Unix milliseconds.
pub fn fmt_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil from days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The models section of a config: one model on the California housing reference.
pub fn model_toml(name: &str, extra: &str) -> String {
    let feats: Vec<String> = FEATURES.iter().map(|f| format!("\"{f}\"")).collect();
    format!(
        "[[models]]\nname = \"{name}\"\nreference = \"{}\"\nfeatures = [{}]\n{extra}\n",
        reference_csv().display(),
        feats.join(", ")
    )
}

/// `driftd replay`: the reports and the summary line.
pub fn replay(cfg: &Path, input: &Path) -> (Vec<serde_json::Value>, serde_json::Value) {
    let o = driftd(&["replay", "--config", cfg.to_str().unwrap(), "--input", input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let reports = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let err = String::from_utf8_lossy(&o.stderr);
    let summary = err.lines().find_map(|l| l.strip_prefix("replay: ")).expect("summary line");
    (reports, serde_json::from_str(summary).unwrap())
}

/// A request the receiver got.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Header names lowercase.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{} body is not JSON: {e}", self.uri))
    }

    pub fn header(&self, k: &str) -> &str {
        self.headers.get(k).map(String::as_str).unwrap_or("")
    }

    /// `application/x-www-form-urlencoded` fields, decoded.
    pub fn form(&self) -> BTreeMap<String, String> {
        fn decode(s: &str) -> String {
            let bytes = s.replace('+', " ").into_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' && i + 2 < bytes.len() {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        }
        String::from_utf8_lossy(&self.body)
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (decode(k), decode(v))
            })
            .collect()
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Wait this long before answering (a hang past the client's timeout).
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply { status, headers: Vec::new(), body: String::new(), delay: Duration::ZERO }
    }

    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }
}

/// A real HTTP server on 127.0.0.1 that records every request and answers from a script
/// (per path prefix), then with the default.
pub struct Receiver {
    pub addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    _runtime: tokio::runtime::Runtime,
}

type Script = Arc<Mutex<Vec<(String, Reply)>>>;

impl Receiver {
    /// `script`: (path prefix, reply) in order; each is used once by the first request
    /// whose path starts with the prefix. Unscripted requests get `default`.
    pub fn start(script: Vec<(&str, Reply)>, default: Reply) -> Receiver {
        Self::start_on(std::net::TcpListener::bind("127.0.0.1:0").unwrap(), script, default)
    }

    pub fn start_on(listener: std::net::TcpListener, script: Vec<(&str, Reply)>, default: Reply) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let script: Script = Arc::new(Mutex::new(script.into_iter().map(|(p, r)| (p.to_string(), r)).collect()));
        let (reqs, default) = (requests.clone(), Arc::new(default));
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
                let (reqs, script, default) = (reqs.clone(), script.clone(), default.clone());
                async move {
                    let (parts, body) = req.into_parts();
                    let body = axum::body::to_bytes(body, 1 << 24).await.unwrap_or_default().to_vec();
                    let uri = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
                    let headers = parts
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect();
                    reqs.lock().unwrap().push(Request {
                        method: parts.method.to_string(),
                        uri: uri.clone(),
                        headers,
                        body,
                        at: Instant::now(),
                    });
                    let reply = {
                        let mut s = script.lock().unwrap();
                        match s.iter().position(|(p, _)| uri.starts_with(p.as_str())) {
                            Some(i) => s.remove(i).1,
                            None => (*default).clone(),
                        }
                    };
                    tokio::time::sleep(reply.delay).await;
                    let mut resp = axum::response::Response::builder().status(reply.status);
                    for (k, v) in &reply.headers {
                        resp = resp.header(*k, v);
                    }
                    resp.body(axum::body::Body::from(reply.body)).unwrap()
                }
            });
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, requests, _runtime: runtime }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `n` requests whose path starts with `prefix` arrived.
    pub fn wait_for(&self, prefix: &str, n: usize, timeout: Duration) -> Vec<Request> {
        let deadline = Instant::now() + timeout;
        loop {
            let got: Vec<Request> = self.requests().into_iter().filter(|r| r.uri.starts_with(prefix)).collect();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new().set("bootstrap.servers", bootstrap).set("linger.ms", "5").create().unwrap()
}

/// Produces to `inference-logs`, waiting for delivery.
pub fn produce(p: &BaseProducer, messages: &[String], key: &str, partition: Option<i32>) {
    for m in messages {
        let mut rec = BaseRecord::to("inference-logs").key(key).payload(m.as_str());
        if let Some(part) = partition {
            rec = rec.partition(part);
        }
        let mut rec = Some(rec);
        while let Some(r) = rec.take() {
            if let Err((_, r)) = p.send(r) {
                p.poll(Duration::from_millis(20));
                rec = Some(r);
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

/// `driftd run` with a config; killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
}

impl Daemon {
    pub fn start(config: &Path) -> Daemon {
        let port = port_of(config);
        let child = Command::new(env!("CARGO_BIN_EXE_driftd"))
            .args(["--log-level", "warn", "run", "--config", config.to_str().unwrap()])
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let d = Daemon { child, port };
        d.wait_ready();
        d
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if http_get(self.port, "/readyz").is_some_and(|(code, _)| code == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "daemon on {} never became ready", self.port);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn signal(&mut self, sig: &str) {
        Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "daemon did not stop on {sig}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn port_of(config: &Path) -> u16 {
    let text = std::fs::read_to_string(config).unwrap();
    let line = text.lines().find(|l| l.starts_with("listen")).unwrap();
    line.rsplit(':').next().unwrap().trim_end_matches('"').parse().unwrap()
}

pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http(port, "GET", path)
}

pub fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Some((code, if chunked { dechunk(body) } else { body.to_string() }))
}

/// The body of a `Transfer-Encoding: chunked` response.
pub fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].strip_prefix("\r\n").unwrap_or(&tail[n..]);
    }
    out
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn alertmanager_binary() -> PathBuf {
    for p in ["/usr/bin/prometheus-alertmanager", "/usr/local/bin/alertmanager"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("Alertmanager is not installed (apt-get install prometheus-alertmanager; .ci/run does it)");
}

/// A real Alertmanager on loopback that notifies `notify_url` (a webhook receiver).
pub struct Alertmanager {
    child: Child,
    pub port: u16,
}

impl Alertmanager {
    pub fn start(dir: &Path, notify_url: &str) -> Alertmanager {
        let port = free_port();
        let cfg = dir.join("alertmanager.yml");
        std::fs::write(
            &cfg,
            format!(
                "route:\n  receiver: hook\n  group_by: [alertname, model]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
                 receivers:\n  - name: hook\n    webhook_configs:\n      - url: {notify_url}\n        send_resolved: true\n"
            ),
        )
        .unwrap();
        let child = Command::new(alertmanager_binary())
            .args([
                &format!("--config.file={}", cfg.display()),
                &format!("--storage.path={}", dir.join("am-data").display()),
                &format!("--web.listen-address=127.0.0.1:{port}"),
                "--cluster.listen-address=",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let am = Alertmanager { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(port, "/-/ready").is_none_or(|(c, _)| c != 200) {
            assert!(Instant::now() < deadline, "Alertmanager did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        am
    }

    /// Every alert Alertmanager holds as active.
    pub fn all(&self) -> Vec<Value> {
        let (code, body) = http_get(self.port, "/api/v2/alerts?active=true").unwrap();
        assert_eq!(code, 200);
        serde_json::from_str(&body).unwrap()
    }

    /// driftd's alerts that Alertmanager holds as active.
    pub fn active(&self) -> Vec<Value> {
        let (code, body) = http_get(self.port, "/api/v2/alerts?active=true").unwrap();
        assert_eq!(code, 200);
        let all: Vec<Value> = serde_json::from_str(&body).unwrap();
        all.into_iter().filter(|a| a["labels"]["alertname"] == json!("DriftdModelDrifting")).collect()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn metric(port: u16, line_prefix: &str) -> Option<f64> {
    let (_, body) = http_get(port, "/metrics")?;
    body.lines().find(|l| l.starts_with(line_prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The head of a `driftd run` config: Kafka on `bootstrap` in consumer group `group`
/// (`options`: extra `[kafka.options]` lines), HTTP on `port`, state in `state`, and the
/// episode policy of the daemon tests (count windows of 1,000, `fire_after` and
/// `resolve_after` 2).
pub fn daemon_toml(bootstrap: &str, group: &str, options: &str, port: u16, state: &Path) -> String {
    format!(
        "[kafka]\nbrokers = \"{bootstrap}\"\ntopics = [\"inference-logs\"]\ngroup_id = \"{group}\"\n\
         [kafka.options]\n\"session.timeout.ms\" = \"6000\"\n{options}\
         [server]\nlisten = \"127.0.0.1:{port}\"\n[state]\ndir = \"{}\"\n\
         [defaults]\nwindow = {{ events = 1000 }}\nfire_after = 2\nresolve_after = 2\n",
        state.display()
    )
}
