//! A real Alertmanager (Debian's `prometheus-alertmanager`) on loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{free_port, http_get};

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
