//! Ports, plain HTTP/1.1 and waiting.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Serves `app` on `listener` from a one-thread runtime of its own: the server runs
/// while the returned runtime is kept, and stops when it is dropped.
pub fn serve(listener: std::net::TcpListener, app: axum::Router) -> (std::net::SocketAddr, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(listener, app).await.unwrap();
    });
    (addr, runtime)
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http(port, "GET", path)
}

/// One request with an empty body; the status and the (de-chunked) body.
pub fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    http_with(port, method, path, &format!("Authorization: Bearer {ADMIN_TOKEN}\r\n"))
}

/// The admin token of the daemons under test (`TestConfig::listen`), which `http` sends.
pub const ADMIN_TOKEN: &str = "driftd-test-admin-token";

/// A request with `headers` (each line ending in CRLF) and no body.
pub fn http_with(port: u16, method: &str, path: &str, headers: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Some((code, if chunked { dechunk(body) } else { body.to_string() }))
}

/// The body of a `Transfer-Encoding: chunked` response.
pub fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].strip_prefix("\r\n").unwrap_or(&tail[n..]);
    }
    out
}

/// The value of the first `/metrics` line that starts with `line_prefix`.
pub fn metric(port: u16, line_prefix: &str) -> Option<f64> {
    let (_, body) = http_get(port, "/metrics")?;
    body.lines().find(|l| l.starts_with(line_prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
