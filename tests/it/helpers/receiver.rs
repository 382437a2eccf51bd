//! A real HTTP server on 127.0.0.1 that records every request and answers from a script:
//! the orchestrators', Slack's, PagerDuty's stand-in, checked as their APIs document.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let script: Script = Arc::new(Mutex::new(script.into_iter().map(|(p, r)| (p.to_string(), r)).collect()));
        let (reqs, default) = (requests.clone(), Arc::new(default));
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
        let (addr, runtime) = super::net::serve(listener, app);
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
