//! A local HTTP receiver standing in for the orchestrator and the alert inbox: it checks
//! the Standard Webhooks signature of every request and tells the demo what came. On a
//! retrain request it plays the retrain pipeline too: it "trains" on the recent data and
//! publishes the new model's reference where driftd reads the model's reference.

use axum::body::Bytes;
use axum::http::HeaderMap;
use tokio::sync::mpsc;

/// What the demo's receivers saw.
#[derive(Debug)]
pub enum Received {
    Retrain {
        run_id: String,
        drifted: usize,
        verified: bool,
    },
    /// The stand-in pipeline published a new reference.
    Published {
        from: String,
        to: String,
    },
    Alert {
        kind: String,
        model: String,
        verified: bool,
        resolution: Option<String>,
    },
}

impl Received {
    pub fn print(&self) {
        let sig = |v: bool| if v { "signature verified" } else { "SIGNATURE INVALID" };
        match self {
            Received::Retrain { run_id, drifted, verified } => {
                println!("  >> retrain request received: run {run_id}, {drifted} drifted features ({})", sig(*verified))
            }
            Received::Published { from, to } => {
                println!("  >> retrain pipeline: trained on the recent data; published its reference ({from} -> {to})")
            }
            Received::Alert { kind, model, verified, resolution } => {
                let why = resolution.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                println!("  >> alert {kind} for {model}{why} ({})", sig(*verified))
            }
        }
    }

    pub fn is_resolution(&self) -> bool {
        matches!(self, Received::Alert { kind, .. } if kind.ends_with("resolved"))
    }
}

fn verified(secret: &str, h: &HeaderMap, body: &[u8]) -> bool {
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let ts = get("webhook-timestamp").parse().unwrap_or(0);
    let now = crate::time::now_s();
    crate::outbound::webhook::verify_fresh(secret, &get("webhook-id"), ts, body, &get("webhook-signature"), now).is_ok()
}

/// What the stand-in pipeline publishes on a retrain request: `data` (the data the new
/// model is trained on) becomes the model's reference at `reference`.
#[derive(Clone)]
pub struct Pipeline {
    pub data: std::path::PathBuf,
    pub reference: std::path::PathBuf,
}

impl Pipeline {
    /// Replaces the reference whole (by rename), as a deploy step would.
    fn publish(&self) -> std::io::Result<()> {
        let tmp = self.reference.with_extension("publishing");
        std::fs::copy(&self.data, &tmp)?;
        std::fs::rename(&tmp, &self.reference)
    }
}

/// Serves `/retrain` and `/alerts` on a free loopback port.
pub async fn start(
    secret: &'static str,
    pipeline: Pipeline,
    tx: mpsc::UnboundedSender<Received>,
) -> anyhow::Result<std::net::SocketAddr> {
    let t1 = tx.clone();
    let app = axum::Router::new()
        .route(
            "/retrain",
            axum::routing::post(move |h: HeaderMap, body: Bytes| async move {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let data = &v["data"];
                let ok = verified(secret, &h, &body);
                let _ = t1.send(Received::Retrain {
                    run_id: data["run_id"].as_str().unwrap_or_default().to_string(),
                    drifted: data["drifted_features"].as_array().map_or(0, Vec::len),
                    verified: ok,
                });
                if !ok {
                    return axum::http::StatusCode::UNAUTHORIZED;
                }
                let name =
                    |p: &std::path::Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                match pipeline.publish() {
                    Ok(()) => {
                        let (from, to) = (name(&pipeline.data), name(&pipeline.reference));
                        let _ = t1.send(Received::Published { from, to });
                        axum::http::StatusCode::ACCEPTED
                    }
                    Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                }
            }),
        )
        .route(
            "/alerts",
            axum::routing::post(move |h: HeaderMap, body: Bytes| async move {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let _ = tx.send(Received::Alert {
                    kind: v["type"].as_str().unwrap_or_default().to_string(),
                    model: v["data"]["model"].as_str().unwrap_or_default().to_string(),
                    verified: verified(secret, &h, &body),
                    resolution: v["data"]["resolution"].as_str().map(str::to_string),
                });
                axum::http::StatusCode::NO_CONTENT
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}
