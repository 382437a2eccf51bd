//! A file served over HTTP as a reference server would: `ETag` (the content's SHA-256)
//! and `If-None-Match` answered with 304; every request recorded.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Per request: the `If-None-Match` it sent and the status answered.
pub type Seen = Arc<Mutex<Vec<(Option<String>, u16)>>>;

/// Serves `path`'s current content at `/{name}` on 127.0.0.1; stopped when dropped.
pub struct ServedFile {
    pub addr: std::net::SocketAddr,
    pub requests: Seen,
    _runtime: tokio::runtime::Runtime,
}

impl ServedFile {
    pub fn start(path: PathBuf, name: &str) -> ServedFile {
        Self::start_on(std::net::TcpListener::bind("127.0.0.1:0").unwrap(), path, name)
    }

    pub fn start_on(listener: std::net::TcpListener, path: PathBuf, name: &str) -> ServedFile {
        let requests: Seen = Arc::default();
        let seen = requests.clone();
        let route = format!("/{name}");
        let app = axum::Router::new().route(
            &route,
            axum::routing::get(move |headers: axum::http::HeaderMap| {
                let (path, seen) = (path.clone(), seen.clone());
                async move {
                    let body = std::fs::read(&path).unwrap_or_default();
                    let etag = format!("\"{}\"", driftd::reference::digest(&body));
                    let asked = headers.get("if-none-match").and_then(|v| v.to_str().ok()).map(String::from);
                    let status = if asked.as_deref() == Some(etag.as_str()) { 304 } else { 200 };
                    seen.lock().unwrap().push((asked, status));
                    let resp = axum::response::Response::builder().status(status).header("etag", etag);
                    resp.body(axum::body::Body::from(if status == 200 { body } else { Vec::new() })).unwrap()
                }
            }),
        );
        let (addr, runtime) = super::net::serve(listener, app);
        ServedFile { addr, requests, _runtime: runtime }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }
}
