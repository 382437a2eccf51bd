//! Serving the API: a connection cap per listener, a deadline for a request's headers and
//! one for its answer (hyper's HTTP/1 server, which `axum::serve` does not let one tune),
//! the bearer token the admin endpoints ask for, and TLS when `[server] tls` is set.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// What one client may hold of a listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; past it the listener stops accepting until one ends.
    pub max_connections: usize,
    /// A client must send a request's headers within this, or the connection closes.
    pub header_timeout: Duration,
    /// A request is answered within this, or with 503.
    pub request_timeout: Duration,
}

/// How long open connections get to finish once `shutdown` resolves.
const DRAIN: Duration = Duration::from_secs(5);

/// The TLS side of a listener, from `[server] tls`'s PEM files. A renewed certificate
/// (the files replaced, as cert-manager or certbot do) is taken at the next handshake,
/// without a restart; a renewal that does not load keeps the certificate in use, and says
/// why in the log.
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let resolver = ReloadingCert::load(cert, key, provider.clone())?;
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_no_client_auth().with_cert_resolver(Arc::new(resolver)))
        .map_err(|e| anyhow::anyhow!("config server.tls: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The certificate and key of `[server] tls`, read again when either file changes (its
/// modification time or length: checked at each handshake, two `stat` calls).
#[derive(Debug)]
struct ReloadingCert {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    provider: Arc<tokio_rustls::rustls::crypto::CryptoProvider>,
    current: std::sync::RwLock<(Arc<CertifiedKey>, Stamp)>,
}

/// What a file's metadata says about its content: modification time and length.
type Stamp = [Option<(std::time::SystemTime, u64)>; 2];

impl ReloadingCert {
    fn load(
        cert: &Path,
        key: &Path,
        provider: Arc<tokio_rustls::rustls::crypto::CryptoProvider>,
    ) -> anyhow::Result<Self> {
        let (certified, stamp) = Self::read(cert, key, &provider)?;
        Ok(ReloadingCert {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current: std::sync::RwLock::new((certified, stamp)),
        })
    }

    fn stamp(cert: &Path, key: &Path) -> Stamp {
        [cert, key].map(|p| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len()))))
    }

    fn read(
        cert: &Path,
        key: &Path,
        provider: &tokio_rustls::rustls::crypto::CryptoProvider,
    ) -> anyhow::Result<(Arc<CertifiedKey>, Stamp)> {
        let stamp = Self::stamp(cert, key);
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| anyhow::anyhow!("config server.tls.cert: cannot read {}: {e}", cert.display()))?;
        if chain.is_empty() {
            anyhow::bail!("config server.tls.cert: {} holds no certificate", cert.display());
        }
        let der = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| anyhow::anyhow!("config server.tls.key: cannot read {}: {e}", key.display()))?;
        let signing = provider
            .key_provider
            .load_private_key(der)
            .map_err(|e| anyhow::anyhow!("config server.tls.key: {}: {e}", key.display()))?;
        let certified = CertifiedKey::new(chain, signing);
        certified.keys_match().map_err(|e| {
            anyhow::anyhow!("config server.tls: {} and {} do not match: {e}", cert.display(), key.display())
        })?;
        Ok((Arc::new(certified), stamp))
    }
}

impl tokio_rustls::rustls::server::ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _: tokio_rustls::rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let stamp = Self::stamp(&self.cert, &self.key);
        let (certified, seen) = self.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        if stamp == seen {
            return Some(certified);
        }
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        match Self::read(&self.cert, &self.key, &self.provider) {
            Ok(fresh) => {
                tracing::info!(cert = %self.cert.display(), "the HTTPS certificate changed on disk: now in use");
                *current = fresh.clone();
                Some(fresh.0)
            }
            Err(error) => {
                // half-written, or a key from another pair: keep serving the one in use,
                // and try again once the files change again
                tracing::warn!(%error, "the HTTPS certificate changed on disk but does not load: the previous one stays");
                current.1 = stamp;
                Some(current.0.clone())
            }
        }
    }
}

/// Serves `router` on `listener` (over TLS with `tls`) until `shutdown` resolves, within
/// `limits`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(limits.request_timeout, deadline));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (closing, closed) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // out of descriptors, say: wait rather than spin
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(router.clone());
        let closed = closed.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(stream, service, limits, closed).await,
                // the handshake counts against the header deadline
                Some(tls) => match tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await {
                    Ok(Ok(stream)) => connection(stream, service, limits, closed).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                },
            }
        });
    }
    let _ = closing.send(true);
    // every permit back: every connection done
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN, permits.acquire_many(all)).await;
    Ok(())
}

/// Serves one connection until it ends, or gracefully once `closed` turns true.
async fn connection<S>(stream: S, service: Service, limits: Limits, mut closed: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = async { closed.wait_for(|c| *c).await.is_ok() } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

type Service = TowerToHyperService<Router>;

/// Answers 503 past the request's deadline.
async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the request took too long\n").into_response(),
    }
}

/// The admin endpoints' bearer token.
#[derive(Clone)]
pub struct AdminToken(pub Arc<str>);

/// Lets a request through only with `Authorization: Bearer <token>`; else 401. A browser
/// cannot send that header to another site without a preflight, so a page cannot fire
/// an admin endpoint either.
pub async fn bearer(State(token): State<AdminToken>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(given) if same(given.as_bytes(), token.0.as_bytes()) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"driftd admin\"")],
            axum::Json(
                serde_json::json!({ "error": "this endpoint needs the admin token (Authorization: Bearer ...)" }),
            ),
        )
            .into_response(),
    }
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"s3cret", b"s3cret"));
        assert!(!same(b"s3cret", b"s3creT"));
        assert!(!same(b"s3cret", b"s3cre"));
        assert!(!same(b"", b"x"));
    }
}
