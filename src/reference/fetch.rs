//! A reference's bytes, from a file or a URL.

use std::path::Path;
use std::time::Duration;

use crate::outbound::{backoff, classify, error_text, Attempt, Dialect};

/// Bytes as they came, and what tells the next fetch whether anything changed.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// A file name whose extension says the format (`profile.json`, `train.csv`).
    pub name: String,
    /// The server's `ETag`, for `If-None-Match` next time.
    pub etag: Option<String>,
}

/// Why the bytes could not be had.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
}

/// The largest reference read, from a file or a URL (a dataset is then profiled, which
/// takes a few times its size in memory). Past it the reference is refused, so a body
/// that never ends, a link to `/dev/zero` or a wrong file cannot take the machine's memory.
pub const MAX_REFERENCE_BYTES: u64 = 256 << 20;

fn too_large(what: &str) -> FetchError {
    FetchError::Refused(format!("{what}: larger than {} MiB, the most a reference may be", MAX_REFERENCE_BYTES >> 20))
}

/// A reference file's bytes: a regular file (a device or a FIFO never ends), at most
/// `MAX_REFERENCE_BYTES` of them.
pub fn read_file(path: &Path) -> Result<Fetched, FetchError> {
    use std::io::Read as _;
    let refused = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => FetchError::NotFound(format!("{}: no such file", path.display())),
        _ => FetchError::Refused(format!("{}: {e}", path.display())),
    };
    let file = std::fs::File::open(path).map_err(refused)?;
    let meta = file.metadata().map_err(refused)?;
    if !meta.is_file() {
        return Err(FetchError::Refused(format!("{}: not a regular file", path.display())));
    }
    if meta.len() > MAX_REFERENCE_BYTES {
        return Err(too_large(&path.display().to_string()));
    }
    // the size may change while it is read: the limit holds for what is read
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_REFERENCE_BYTES + 1).read_to_end(&mut bytes).map_err(refused)?;
    if bytes.len() as u64 > MAX_REFERENCE_BYTES {
        return Err(too_large(&path.display().to_string()));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Fetched { bytes, name, etag: None })
}

/// A response's body, refused past `MAX_REFERENCE_BYTES` (announced or read).
async fn body_within_limit(url: &str, mut resp: reqwest::Response) -> Result<Result<Vec<u8>, String>, FetchError> {
    if resp.content_length().is_some_and(|n| n > MAX_REFERENCE_BYTES) {
        return Err(too_large(url));
    }
    let limit = MAX_REFERENCE_BYTES as usize;
    let mut bytes = Vec::with_capacity(resp.content_length().map_or(0, |n| n as usize));
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let len = bytes.len() + chunk.len();
                if len > limit {
                    return Err(too_large(url));
                }
                // grown by doubling, but never past the limit
                if len > bytes.capacity() {
                    bytes.reserve_exact(len.max(bytes.capacity() * 2).min(limit) - bytes.len());
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Ok(bytes)),
            Err(e) => return Ok(Err(format!("reading the body: {e}"))),
        }
    }
}

/// The last path segment of a URL, without its query: the file name that says the format.
pub fn url_file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or_default().to_string()
}

/// Attempts per fetch: a passing fault does not make a reference stale.
const ATTEMPTS: u32 = 3;

/// GETs a URL: `Ok(None)` when `etag` still matches (304). Connection errors, timeouts,
/// 5xx, 408 and 429 are retried with jittered backoff, a few times.
pub async fn get(
    http: &reqwest::Client,
    url: &str,
    auth: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    etag: Option<&str>,
    timeout: Duration,
) -> Result<Option<Fetched>, FetchError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut req = auth(http.get(url).timeout(timeout));
        if let Some(tag) = etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, tag);
        }
        let failure = match req.send().await {
            Ok(resp) if resp.status() == reqwest::StatusCode::NOT_MODIFIED => return Ok(None),
            Ok(resp) if resp.status().is_success() => {
                let etag = resp.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(String::from);
                match body_within_limit(url, resp).await? {
                    Ok(bytes) => return Ok(Some(Fetched { bytes, name: url_file_name(url), etag })),
                    Err(reason) => Attempt::Retry { reason, status: None, after: None },
                }
            }
            Ok(resp) => {
                let (status, retry_after) = (resp.status(), resp.headers().get("retry-after").cloned());
                let text = resp.text().await.unwrap_or_default();
                classify(status, retry_after.as_ref().and_then(|v| v.to_str().ok()), &text, Dialect::Unkeyed)
            }
            Err(e) => Attempt::Retry { reason: error_text(&e), status: None, after: None },
        };
        match failure {
            Attempt::Fail { reason, status: 404 | 410 } => {
                return Err(FetchError::NotFound(format!("{url}: {reason}")))
            }
            Attempt::Fail { reason, .. } => return Err(FetchError::Refused(format!("{url}: {reason}"))),
            Attempt::Retry { reason, .. } if attempt >= ATTEMPTS => {
                return Err(FetchError::Unreachable(format!("{url}: {reason}")))
            }
            Attempt::Retry { after, .. } => {
                tokio::time::sleep(backoff(Duration::from_millis(200), Duration::from_secs(2), attempt, after)).await
            }
            Attempt::Delivered { .. } | Attempt::Duplicate { .. } => {
                return Err(FetchError::Refused(format!("{url}: unexpected answer")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_file_name_says_the_format() {
        assert_eq!(url_file_name("https://h/refs/profile.json?version=2"), "profile.json");
        assert_eq!(url_file_name("http://h/data/train.parquet"), "train.parquet");
        assert_eq!(url_file_name("http://h/"), "");
    }

    #[test]
    fn a_device_is_refused_before_a_byte_is_read() {
        let e = read_file(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(&e, FetchError::Refused(m) if m.contains("not a regular file")), "{e}");
    }

    #[test]
    fn a_missing_file_is_not_found() {
        assert!(matches!(read_file(Path::new("/nonexistent/ref.csv")), Err(FetchError::NotFound(_))));
    }
}
