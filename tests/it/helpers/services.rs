//! Servers the slow tests run for real from their virtualenvs: processes in a group of
//! their own (killed whole when dropped), a small JSON client, MLflow and Prefect.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{dechunk, free_port, root, wait_until};

/// A server process, with its process group.
pub struct Proc(Child);

extern "C" {
    // libc's kill(2): the standard library has no process-group signal
    fn kill(pid: i32, sig: i32) -> i32;
}

impl Drop for Proc {
    fn drop(&mut self) {
        // the servers start workers of their own: signal the whole process group, which
        // `spawn` made the child's own (a negative pid names a group)
        let group = -(self.0.id() as i32);
        if group < -1 {
            unsafe {
                kill(group, 15);
            }
            std::thread::sleep(Duration::from_millis(500));
            unsafe {
                kill(group, 9);
            }
        }
        let _ = self.0.wait();
    }
}

pub fn spawn(cmd: &mut Command, log: &Path) -> Proc {
    use std::os::unix::process::CommandExt;
    let f = std::fs::File::create(log).unwrap();
    // stdin closed: a server reading it would eat whatever runs the tests
    cmd.stdin(Stdio::null()).stdout(Stdio::from(f.try_clone().unwrap())).stderr(Stdio::from(f)).process_group(0);
    Proc(cmd.spawn().unwrap())
}

pub fn venv(var: &str) -> PathBuf {
    PathBuf::from(std::env::var(var).unwrap_or_else(|_| panic!("{var} must name a virtualenv (scripts/test sets it)")))
}

/// A small HTTP client over std (the tests' JSON calls to the orchestrators).
pub fn call(method: &str, url: &str, body: Option<&Value>, auth: Option<&str>) -> (u16, Value) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    write!(
        s,
        "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (head, raw) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let payload =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(raw) } else { raw.to_string() };
    (code, serde_json::from_str(&payload).unwrap_or(Value::Null))
}

/// PUTs raw bytes; the status.
pub fn put(url: &str, body: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "PUT /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
        .unwrap();
    s.write_all(body).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    String::from_utf8_lossy(&buf).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// A real MLflow tracking server (pip `mlflow==3.17.2`) on loopback, its store in `dir`.
pub struct Mlflow {
    pub url: String,
    _proc: Proc,
}

impl Mlflow {
    pub fn start(dir: &Path) -> Mlflow {
        std::fs::create_dir_all(dir).unwrap();
        let venv = venv("DRIFTD_MLFLOW_VENV");
        let port = free_port();
        let mut cmd = Command::new(venv.join("bin/mlflow"));
        cmd.args(["server", "--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(dir.join("artifacts"));
        let proc = spawn(&mut cmd, &dir.join("mlflow.log"));
        let url = format!("http://127.0.0.1:{port}");
        wait_until("MLflow's /health", Duration::from_secs(120), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            (call("GET", &format!("{url}/health"), None, None).0 == 200).then_some(())
        });
        Mlflow { url, _proc: proc }
    }

    /// The version an alias points at, and its tags.
    pub fn alias(&self, model: &str, alias: &str) -> Option<Value> {
        let (code, v) = call(
            "GET",
            &format!("{}/api/2.0/mlflow/registered-models/alias?name={model}&alias={alias}", self.url),
            None,
            None,
        );
        (code == 200).then(|| v["model_version"].clone())
    }

    /// Runs `examples/mlflow/driftd_mlflow.py` (with the Prefect venv's Python, which has
    /// the MLflow client): trains on `data`, registers a version with its reference,
    /// moves `alias`. Returns the version.
    pub fn publish(&self, data: &Path, model: &str, target: Option<&str>, alias: &str) -> String {
        let python = venv("DRIFTD_PREFECT_VENV").join("bin/python");
        let mut cmd = Command::new(python);
        cmd.arg(root().join("examples/mlflow/driftd_mlflow.py"))
            .args(["--data", data.to_str().unwrap(), "--model", model, "--alias", alias])
            .args(["--features", &super::FEATURES.join(",")])
            .env("MLFLOW_TRACKING_URI", &self.url)
            .env("DRIFTD_BIN", env!("CARGO_BIN_EXE_driftd"));
        if let Some(t) = target {
            cmd.args(["--target", t]);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "driftd_mlflow.py: {}", String::from_utf8_lossy(&o.stderr));
        let out: Value =
            serde_json::from_slice(o.stdout.rsplit(|b| *b == b'\n').find(|l| !l.is_empty()).unwrap()).unwrap();
        out["version"].as_str().unwrap().to_string()
    }
}

/// A real Prefect server (pip `prefect==3.9.1`) on loopback, and the environment its
/// clients need.
pub struct Prefect {
    pub api: String,
    pub venv: PathBuf,
    home: PathBuf,
    _proc: Proc,
}

impl Prefect {
    pub fn start(dir: &Path) -> Prefect {
        let venv = venv("DRIFTD_PREFECT_VENV");
        let port = free_port();
        let api = format!("http://127.0.0.1:{port}/api");
        let home = dir.join("prefect-home");
        let mut server = Command::new(venv.join("bin/prefect"));
        server.args(["server", "start", "--host", "127.0.0.1", "--port", &port.to_string()]);
        prefect_env(&mut server, &home, &api, &venv);
        let proc = spawn(&mut server, &dir.join("server.log"));
        wait_until("the Prefect server", Duration::from_secs(180), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            (call("GET", &format!("{api}/health"), None, None).0 == 200).then_some(())
        });
        Prefect { api, venv, home, _proc: proc }
    }

    /// What a Prefect client process needs.
    pub fn env(&self, c: &mut Command) {
        prefect_env(c, &self.home, &self.api, &self.venv);
    }

    /// Serves the example flow (`examples/prefect/retrain_flow.py`) with `extra` in its
    /// environment; returns the process and the deployment's id.
    pub fn serve_example(&self, dir: &Path, extra: &[(&str, String)]) -> (Proc, String) {
        let mut serve = Command::new(self.venv.join("bin/python"));
        serve.arg(root().join("examples/prefect/retrain_flow.py"));
        self.env(&mut serve);
        for (k, v) in extra {
            serve.env(k, v);
        }
        let proc = spawn(&mut serve, &dir.join("flow.log"));
        let deployment = wait_until("the deployment", Duration::from_secs(120), || {
            let (code, d) =
                call("GET", &format!("{}/deployments/name/driftd-retrain/driftd-retrain", self.api), None, None);
            (code == 200).then(|| d["id"].as_str().unwrap().to_string())
        });
        (proc, deployment)
    }

    /// The deployment's flow runs.
    pub fn runs(&self, deployment: &str) -> Vec<Value> {
        let filter = serde_json::json!({"flow_runs": {"deployment_id": {"any_": [deployment]}}});
        call("POST", &format!("{}/flow_runs/filter", self.api), Some(&filter), None)
            .1
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn prefect_env(c: &mut Command, home: &Path, api: &str, venv: &Path) {
    c.env("PREFECT_HOME", home)
        .env("PREFECT_API_URL", api)
        .env("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        .env("PREFECT_SERVER_UI_ENABLED", "false")
        .env("PREFECT_LOGGING_LEVEL", "WARNING")
        .env("PATH", format!("{}:{}", venv.join("bin").display(), std::env::var("PATH").unwrap_or_default()));
}
