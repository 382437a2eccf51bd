//! Jenkins' remote trigger as its CSRF protection enforces it (core's `CrumbFilter` and
//! `DefaultCrumbIssuer`), on a real HTTP server: `GET /crumbIssuer/api/json` opens a
//! session (a `JSESSIONID.*` cookie) and answers its crumb; a POST to
//! `/job/{name}/buildWithParameters` without the crumb of its own session gets 403 "No
//! valid crumb was included in the request"; then the job's trigger token is checked
//! (403 without it), and the build is queued (201 with a queue item's `Location`). No
//! Jenkins can run here (no Java registry): this stands in for it, and says so.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::receiver::Request;

const COOKIE: &str = "JSESSIONID.4f2ad1e3";

#[derive(Default)]
struct Book {
    /// session id → its crumb
    sessions: BTreeMap<String, String>,
    /// the parameters of every build queued
    builds: Vec<BTreeMap<String, String>>,
    /// every POST's answer status
    answers: Vec<u16>,
}

pub struct JenkinsStandIn {
    pub addr: std::net::SocketAddr,
    book: Arc<Mutex<Book>>,
    _runtime: tokio::runtime::Runtime,
}

impl JenkinsStandIn {
    /// A Jenkins whose job takes `token`; `csrf` off is a Jenkins without a crumb issuer
    /// (404 there, POSTs need no crumb).
    pub fn start(token: &str, csrf: bool) -> JenkinsStandIn {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let book: Arc<Mutex<Book>> = Arc::default();
        let (state, token) = (book.clone(), token.to_string());
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (book, token) = (state.clone(), token.clone());
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 1 << 24).await.unwrap_or_default().to_vec();
                let header = |k: &str| parts.headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let reply = |status: u16, headers: Vec<(&str, String)>, body: String| {
                    let mut r = axum::response::Response::builder().status(status);
                    for (k, v) in headers {
                        r = r.header(k, v);
                    }
                    r.body(axum::body::Body::from(body)).unwrap()
                };
                let mut b = book.lock().unwrap();
                let path = parts.uri.path();
                if parts.method == "GET" && path == "/crumbIssuer/api/json" {
                    if !csrf {
                        return reply(404, vec![], "Not Found".into());
                    }
                    let n = b.sessions.len() + 1;
                    let (session, crumb) = (format!("node0s{n}x"), format!("c{n:08x}deadbeef"));
                    b.sessions.insert(session.clone(), crumb.clone());
                    let body = serde_json::json!({
                        "_class": "hudson.security.csrf.DefaultCrumbIssuer",
                        "crumb": crumb,
                        "crumbRequestField": "Jenkins-Crumb",
                    });
                    return reply(
                        200,
                        vec![
                            ("content-type", "application/json;charset=utf-8".into()),
                            ("set-cookie", format!("{COOKIE}={session}; Path=/; HttpOnly")),
                        ],
                        body.to_string(),
                    );
                }
                if parts.method != "POST" || !path.ends_with("/buildWithParameters") {
                    return reply(404, vec![], "Not Found".into());
                }
                let session = header("cookie")
                    .split(';')
                    .filter_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")).map(str::to_string))
                    .next();
                let crumb_ok = session.and_then(|s| b.sessions.get(&s).cloned()) == Some(header("jenkins-crumb"));
                let form = Request {
                    method: "POST".into(),
                    uri: path.into(),
                    headers: BTreeMap::new(),
                    body,
                    at: std::time::Instant::now(),
                }
                .form();
                let (status, text) = if csrf && !crumb_ok {
                    (403, "Error 403 No valid crumb was included in the request".to_string())
                } else if form.get("token") != Some(&token) {
                    (403, "Error 403 Invalid or missing token".to_string())
                } else {
                    b.builds.push(form);
                    (201, String::new())
                };
                b.answers.push(status);
                let location = format!("http://{addr}/queue/item/{}/", b.builds.len());
                reply(status, if status == 201 { vec![("location", location)] } else { vec![] }, text)
            }
        });
        let (_, runtime) = super::net::serve(listener, app);
        JenkinsStandIn { addr, book, _runtime: runtime }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The parameters of each build queued.
    pub fn builds(&self) -> Vec<BTreeMap<String, String>> {
        self.book.lock().unwrap().builds.clone()
    }

    /// The status each POST got.
    pub fn answers(&self) -> Vec<u16> {
        self.book.lock().unwrap().answers.clone()
    }

    /// Crumbs issued (one per session).
    pub fn crumbs_issued(&self) -> usize {
        self.book.lock().unwrap().sessions.len()
    }
}
