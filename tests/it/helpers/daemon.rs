//! The daemon under test: a config built section by section, the daemon started
//! in-process (`driftd::app::run` on a listener bound to port 0) or, where a test needs a
//! separate process to kill, the real binary; and `driftd replay`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use driftd::app::App;
use driftd::config::Settings;

use super::{driftd, http_get, reference_csv, root, FEATURES};

/// A driftd config, built up section by section. `settings()` parses it with the code the
/// daemon uses; `write()` puts it in a file for a daemon (which re-reads it on reload).
#[derive(Debug, Clone, Default)]
pub struct TestConfig {
    kafka: Vec<String>,
    kafka_options: Vec<(String, String)>,
    /// `[server]` keys; the admin token the `http` helper sends is added unless
    /// `no_admin_token`.
    server: Vec<String>,
    no_admin_token: bool,
    sections: String,
}

impl TestConfig {
    pub fn new() -> TestConfig {
        TestConfig::default()
    }

    /// `[kafka]` on `bootstrap`, topic `inference-logs`, consumer group `group`, with a
    /// 6 s session timeout for a fast first join.
    pub fn kafka(mut self, bootstrap: &str, group: &str) -> TestConfig {
        self.kafka.push(format!("brokers = \"{bootstrap}\"\ntopics = [\"inference-logs\"]\ngroup_id = \"{group}\""));
        self.kafka_option("session.timeout.ms", "6000")
    }

    /// Another `[kafka]` key, as TOML.
    pub fn kafka_line(mut self, line: &str) -> TestConfig {
        self.kafka.push(line.to_string());
        self
    }

    /// A `[kafka.options]` entry (librdkafka's).
    pub fn kafka_option(mut self, key: &str, value: &str) -> TestConfig {
        self.kafka_options.retain(|(k, _)| k != key);
        self.kafka_options.push((key.to_string(), value.to_string()));
        self
    }

    /// `[server]` on `port`.
    pub fn listen(self, port: u16) -> TestConfig {
        self.server_line(&format!("listen = \"127.0.0.1:{port}\""))
    }

    /// Another `[server]` key, as TOML.
    pub fn server_line(mut self, line: &str) -> TestConfig {
        self.server.push(line.to_string());
        self
    }

    /// No admin token: the daemon serves no admin endpoint.
    pub fn without_admin_token(mut self) -> TestConfig {
        self.no_admin_token = true;
        self
    }

    pub fn state(self, dir: &Path) -> TestConfig {
        self.section(&format!("[state]\ndir = \"{}\"\n", dir.display()))
    }

    /// `[reports]`: a JSON Lines file, and a Kafka topic when given.
    pub fn reports(self, file: &Path, topic: Option<&str>) -> TestConfig {
        let topic = topic.map(|t| format!("topic = \"{t}\"\n")).unwrap_or_default();
        self.section(&format!("[reports]\nfile = \"{}\"\n{topic}", file.display()))
    }

    /// The episode policy of the daemon tests: count windows of 1,000 events, drifting
    /// after 2 drifted windows, ok after 2 clean ones.
    pub fn episode_defaults(self) -> TestConfig {
        self.section("[defaults]\nwindow = { events = 1000 }\nfire_after = 2\nresolve_after = 2\n")
    }

    /// A model on the California housing reference (`extra`: more of its keys).
    pub fn model(self, name: &str, extra: &str) -> TestConfig {
        self.section(&model_toml(name, extra))
    }

    /// A model with the housing features on another reference (a path, URL or registry URI).
    pub fn model_at(self, name: &str, reference: &str, extra: &str) -> TestConfig {
        let toml = model_toml(name, extra).replace(&reference_csv().display().to_string(), reference);
        self.section(&toml)
    }

    /// Any TOML, appended as it is.
    pub fn section(mut self, toml: &str) -> TestConfig {
        self.sections.push_str(toml);
        if !toml.ends_with('\n') {
            self.sections.push('\n');
        }
        self
    }

    pub fn toml(&self) -> String {
        let mut text = String::new();
        if !self.kafka.is_empty() || !self.kafka_options.is_empty() {
            text.push_str("[kafka]\n");
            for line in &self.kafka {
                text.push_str(line);
                text.push('\n');
            }
            text.push_str("[kafka.options]\n");
            for (k, v) in &self.kafka_options {
                text.push_str(&format!("\"{k}\" = \"{v}\"\n"));
            }
        }
        text.push_str("[server]\n");
        if !self.no_admin_token {
            text.push_str(&format!("admin_token = {{ secret = \"{}\" }}\n", super::ADMIN_TOKEN));
        }
        for line in &self.server {
            text.push_str(line);
            text.push('\n');
        }
        text + &self.sections
    }

    /// The config as the daemon reads it.
    pub fn settings(&self) -> Settings {
        Settings::from_toml(&self.toml()).unwrap_or_else(|e| panic!("{e}\n{}", self.toml()))
    }

    /// Writes the config to `path` (checked first) and returns the path.
    pub fn write(&self, path: &Path) -> PathBuf {
        self.settings();
        std::fs::write(path, self.toml()).unwrap();
        path.to_path_buf()
    }
}

/// A `[[models]]` entry on the California housing reference, monitoring the eight
/// features; `extra` holds more of its keys.
pub fn model_toml(name: &str, extra: &str) -> String {
    let feats: Vec<String> = FEATURES.iter().map(|f| format!("\"{f}\"")).collect();
    format!(
        "[[models]]\nname = \"{name}\"\nreference = \"{}\"\nfeatures = [{}]\n{extra}\n",
        reference_csv().display(),
        feats.join(", ")
    )
}

fn wait_ready(port: u16, mut failed: impl FnMut() -> Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http_get(port, "/readyz").is_some_and(|(code, _)| code == 200) {
            return;
        }
        if let Some(why) = failed() {
            panic!("the daemon on {port} stopped before it was ready: {why}");
        }
        assert!(Instant::now() < deadline, "the daemon on {port} never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The daemon running in this process, on its own runtime; stopped in order (as SIGTERM
/// stops it) by `stop` or when dropped.
pub struct InProcess {
    pub port: u16,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl InProcess {
    /// Starts the daemon on the config file and waits until `/readyz` says ready.
    pub fn start(config: &Path) -> InProcess {
        let mut d = InProcess::launch(config);
        wait_ready(d.port, || if d.task.as_ref().is_some_and(|t| t.is_finished()) { Some(d.finish()) } else { None });
        d
    }

    /// Starts the daemon on the config file, without waiting for it to be ready.
    pub fn launch(config: &Path) -> InProcess {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let app = App::load(config.to_path_buf()).unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(driftd::app::run(app, listener, async {
            let _ = stopped.await;
        }));
        InProcess { port, runtime: Some(runtime), stop: Some(stop), task: Some(task) }
    }

    /// The ordered shutdown SIGTERM triggers; panics if it fails or hangs.
    pub fn stop(mut self) {
        let result = self.finish();
        assert!(result.is_empty(), "the daemon stopped with an error: {result}");
    }

    /// Stops and waits; returns the error, if any, as text.
    fn finish(&mut self) -> String {
        let (Some(runtime), Some(task)) = (self.runtime.take(), self.task.take()) else { return String::new() };
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let outcome = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(60), task).await });
        runtime.shutdown_timeout(Duration::from_secs(5));
        match outcome {
            Ok(Ok(Ok(()))) => String::new(),
            Ok(Ok(Err(e))) => format!("{e:#}"),
            Ok(Err(e)) => format!("the daemon task panicked: {e}"),
            Err(_) => "it did not stop within 60 s".into(),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// `driftd run` as a process of its own (for tests that kill it); killed when dropped.
pub struct Process {
    pub child: Child,
    pub port: u16,
}

impl Process {
    /// Starts the binary on the config file, which listens on `port`.
    pub fn start(config: &Path, port: u16) -> Process {
        // DRIFTD_TEST_LOG_LEVEL=info shows what the daemons did (rebalances, windows)
        let level = std::env::var("DRIFTD_TEST_LOG_LEVEL").unwrap_or_else(|_| "warn".into());
        // DRIFTD_TEST_LOG_DIR=DIR: each daemon's log in DIR/driftd-PORT.log
        let stderr = match std::env::var_os("DRIFTD_TEST_LOG_DIR") {
            Some(dir) => {
                let path = Path::new(&dir).join(format!("driftd-{port}.log"));
                Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap())
            }
            None => Stdio::inherit(),
        };
        let child = Command::new(env!("CARGO_BIN_EXE_driftd"))
            .args(["--log-level", &level, "run", "--config", config.to_str().unwrap()])
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut d = Process { child, port };
        wait_ready(port, || d.child.try_wait().unwrap().map(|s| s.to_string()));
        d
    }

    /// Sends a signal (`-KILL`, `-TERM`) and waits for the process to end.
    pub fn signal(&mut self, sig: &str) {
        Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "daemon did not stop on {sig}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `driftd replay`: the reports and the summary line.
pub fn replay(cfg: &Path, input: &Path) -> (Vec<serde_json::Value>, serde_json::Value) {
    replay_with_args(cfg, input, &[])
}

/// `driftd replay` with more arguments (`--format`, `--topic`).
pub fn replay_with_args(cfg: &Path, input: &Path, args: &[&str]) -> (Vec<serde_json::Value>, serde_json::Value) {
    let mut all = vec!["replay", "--config", cfg.to_str().unwrap(), "--input", input.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = driftd(&all);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let reports = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let err = String::from_utf8_lossy(&o.stderr);
    let summary = err.lines().find_map(|l| l.strip_prefix("replay: ")).expect("summary line");
    (reports, serde_json::from_str(summary).unwrap())
}
