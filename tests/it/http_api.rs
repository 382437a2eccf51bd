//! The HTTP API's defences (#14): the admin endpoints need the bearer token (and are not
//! served without one), may live on a listener of their own; a manual retrain is
//! idempotent within `manual_interval`; half-sent requests cannot starve health checks;
//! with `[server] tls` the API speaks HTTPS only.
//! The daemon runs in-process against a broker that is not there: the API does not need
//! one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{free_port, http, http_with, wait_until, InProcess, Receiver, Reply, TestConfig, ADMIN_TOKEN};

const MODEL: &str = "housing";

/// A daemon on no broker with a webhook retrain target at `receiver`.
fn daemon(dir: &std::path::Path, receiver: &Receiver, config: impl FnOnce(TestConfig) -> TestConfig) -> InProcess {
    let cfg = config(
        TestConfig::new()
            .kafka(&format!("127.0.0.1:{}", free_port()), "driftd-http")
            .state(&dir.join("state"))
            .section(&format!(
                "[retrain]\npreset = \"webhook\"\nurl = \"{}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
                receiver.url("/retrain")
            ))
            .model(MODEL, ""),
    )
    .write(&dir.join("driftd.toml"));
    let d = InProcess::launch(&cfg);
    wait_until("the API", Duration::from_secs(30), || http(d.port, "GET", "/healthz").map(|_| ()));
    d
}

#[test]
fn admin_endpoints_need_the_token_and_a_manual_retrain_is_sent_once() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![], Reply::status(200));
    let d = daemon(dir.path(), &receiver, |c| c);
    let retrain = format!("/api/v1/models/{MODEL}/retrain");
    for (what, headers) in [
        ("no token", String::new()),
        ("a wrong token", "Authorization: Bearer guess\r\n".to_string()),
        ("the token's prefix", format!("Authorization: Bearer {}\r\n", &ADMIN_TOKEN[..8])),
        ("basic auth", "Authorization: Basic ZHJpZnRkOmRyaWZ0ZA==\r\n".to_string()),
        // what a page on another site can send without a preflight
        ("a cross-site form post", "Origin: https://evil.example\r\nContent-Type: text/plain\r\n".to_string()),
    ] {
        for path in ["/api/v1/reload", retrain.as_str()] {
            let (code, body) = http_with(d.port, "POST", path, &headers).unwrap();
            assert_eq!(code, 401, "{what} on {path}: {body}");
            assert!(body.contains("admin token"), "{body}");
        }
    }
    // read-only endpoints stay open (Prometheus scrapes them)
    assert_eq!(http_with(d.port, "GET", "/metrics", "").unwrap().0, 200);
    assert_eq!(http_with(d.port, "GET", "/api/v1/models", "").unwrap().0, 200);
    assert_eq!(http(d.port, "POST", "/api/v1/reload").unwrap().0, 200);

    // 20 manual retrains within the interval: one request, one run id
    let first = wait_until("the actions", Duration::from_secs(30), || {
        let (code, body) = http(d.port, "POST", &retrain).unwrap();
        (code != 503).then(|| (code, serde_json::from_str::<Value>(&body).unwrap()))
    });
    assert_eq!(first.0, 202, "{:?}", first.1);
    let run_id = first.1["run_id"].as_str().unwrap().to_string();
    for _ in 0..19 {
        let (code, body) = http(d.port, "POST", &retrain).unwrap();
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((code, body["run_id"].as_str()), (200, Some(run_id.as_str())), "{body}");
    }
    receiver.wait_for("/retrain", 1, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    let sent = receiver.requests().into_iter().filter(|q| q.uri == "/retrain").count();
    assert_eq!(sent, 1, "20 manual retrains within the interval are one request at the target");
    d.stop();
}

#[test]
fn without_a_token_no_admin_endpoint_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![], Reply::status(200));
    let d = daemon(dir.path(), &receiver, TestConfig::without_admin_token);
    for path in ["/api/v1/reload", &format!("/api/v1/models/{MODEL}/retrain")] {
        assert_eq!(http(d.port, "POST", path).unwrap().0, 404, "{path}");
    }
    assert_eq!(http(d.port, "GET", "/api/v1/models").unwrap().0, 200);
    d.stop();
}

#[test]
fn admin_endpoints_on_a_listener_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![], Reply::status(200));
    let admin = free_port();
    let d = daemon(dir.path(), &receiver, |c| c.server_line(&format!("admin_listen = \"127.0.0.1:{admin}\"")));
    assert_eq!(http(d.port, "POST", "/api/v1/reload").unwrap().0, 404, "not on the main listener");
    assert_eq!(http_with(admin, "POST", "/api/v1/reload", "").unwrap().0, 401);
    assert_eq!(http(admin, "POST", "/api/v1/reload").unwrap().0, 200);
    assert_eq!(http(admin, "GET", "/metrics").unwrap().0, 404, "metrics stay on the main listener");
    assert_eq!(http(d.port, "GET", "/metrics").unwrap().0, 200);
    d.stop();
}

/// 100 clients that send half a request and wait, against a cap of 32 connections and a
/// 1 s header deadline: they are cut off, and `/healthz` answers within seconds.
#[test]
fn half_sent_requests_do_not_starve_the_health_check() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![], Reply::status(200));
    let d =
        daemon(dir.path(), &receiver, |c| c.server_line("max_connections = 32").server_line("header_timeout = \"1s\""));
    let mut stalled: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: loc").unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    let (code, _) = wait_until("/healthz", Duration::from_secs(30), || http(d.port, "GET", "/healthz"));
    let took = started.elapsed();
    println!("/healthz answered {:.1} s after 100 half-sent requests", took.as_secs_f64());
    assert_eq!(code, 200);
    assert!(took < Duration::from_secs(15), "{took:?}");
    // the first ones were cut off at the deadline: the server closed them
    let s = &mut stalled[0];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let read = s.read_to_end(&mut buf);
    assert!(read.is_ok(), "closed by the server, not left hanging: {read:?}");
    d.stop();
}

#[test]
fn with_tls_the_api_speaks_https_only() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::helpers::self_signed(dir.path());
    let cfg = TestConfig::new()
        .kafka(&format!("127.0.0.1:{}", free_port()), "driftd-https")
        .state(&dir.path().join("state"))
        .server_line(&format!("tls = {{ cert = \"{}\", key = \"{}\" }}", cert.display(), key.display()))
        .model(MODEL, "")
        .write(&dir.path().join("driftd.toml"));
    let d = InProcess::launch(&cfg);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let trusting = |cert: &std::path::Path| {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(cert).unwrap()).unwrap();
        // a connection per request: each is a new handshake
        reqwest::Client::builder().add_root_certificate(ca).pool_max_idle_per_host(0).build().unwrap()
    };
    let client = trusting(&cert);
    let get = |path: &str, token: Option<&str>| {
        let mut req = client.get(format!("https://127.0.0.1:{}{path}", d.port));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        rt.block_on(async { req.send().await.ok().map(|r| r.status().as_u16()) })
    };
    wait_until("the API over HTTPS", Duration::from_secs(30), || get("/healthz", None).filter(|s| *s == 200));
    assert_eq!(get("/metrics", None), Some(200));
    let reload = rt.block_on(async {
        client
            .post(format!("https://127.0.0.1:{}/api/v1/reload", d.port))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert_eq!(reload.unwrap(), 200, "the admin endpoints over HTTPS too");
    // plain HTTP on the same port gets no HTTP answer
    assert!(http(d.port, "GET", "/healthz").is_none_or(|(code, _)| code != 200));
    // a client that does not trust the certificate cannot talk to it
    let untrusting = reqwest::Client::new();
    let refused = rt.block_on(untrusting.get(format!("https://127.0.0.1:{}/healthz", d.port)).send());
    assert!(refused.is_err(), "an unknown certificate is refused by the client");

    // the certificate is renewed on disk (a new key pair, the files replaced as
    // cert-manager does): the next handshake presents it, no restart
    let old_cert = dir.path().join("old-cert.pem");
    std::fs::copy(&cert, &old_cert).unwrap();
    let renewed_dir = dir.path().join("renewed");
    std::fs::create_dir_all(&renewed_dir).unwrap();
    let (new_cert, new_key) = crate::helpers::self_signed(&renewed_dir);
    std::fs::copy(&new_key, dir.path().join("key.pem.new")).unwrap();
    std::fs::rename(dir.path().join("key.pem.new"), &key).unwrap();
    std::fs::copy(&new_cert, dir.path().join("cert.pem.new")).unwrap();
    std::fs::rename(dir.path().join("cert.pem.new"), &cert).unwrap();
    let renewed = trusting(&new_cert);
    let status = rt.block_on(async { renewed.get(format!("https://127.0.0.1:{}/healthz", d.port)).send().await });
    assert_eq!(status.map(|r| r.status().as_u16()).ok(), Some(200), "the renewed certificate is served");
    // a client that trusts only the old certificate (a new one: no session to resume)
    let old = trusting(&old_cert);
    let refused = rt.block_on(async { old.get(format!("https://127.0.0.1:{}/healthz", d.port)).send().await });
    assert!(refused.is_err(), "the old certificate is no longer presented");
    d.stop();
}
