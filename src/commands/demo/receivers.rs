//! A local HTTP receiver standing in for the orchestrator and the alert inbox: it checks
//! the Standard Webhooks signature of every request and tells the demo what came.

use axum::body::Bytes;
use axum::http::HeaderMap;
use tokio::sync::mpsc;

/// What the demo's receivers saw.
#[derive(Debug)]
pub enum Received {
    Retrain { run_id: String, drifted: usize, verified: bool },
    Alert { kind: String, model: String, verified: bool },
}

impl Received {
    pub fn print(&self) {
        let sig = |v: bool| if v { "signature verified" } else { "SIGNATURE INVALID" };
        match self {
            Received::Retrain { run_id, drifted, verified } => {
                println!("  >> retrain request received: run {run_id}, {drifted} drifted features ({})", sig(*verified))
            }
            Received::Alert { kind, model, verified } => println!("  >> alert {kind} for {model} ({})", sig(*verified)),
        }
    }

    pub fn is_resolution(&self) -> bool {
        matches!(self, Received::Alert { kind, .. } if kind.ends_with("resolved"))
    }
}

fn verified(secret: &str, h: &HeaderMap, body: &[u8]) -> bool {
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let ts = get("webhook-timestamp").parse().unwrap_or(0);
    crate::sinks::webhook::verify(secret, &get("webhook-id"), ts, body, &get("webhook-signature"))
}

/// Serves `/retrain` and `/alerts` on a free loopback port.
pub async fn start(secret: &'static str, tx: mpsc::UnboundedSender<Received>) -> anyhow::Result<std::net::SocketAddr> {
    let t1 = tx.clone();
    let app = axum::Router::new()
        .route(
            "/retrain",
            axum::routing::post(move |h: HeaderMap, body: Bytes| async move {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let data = &v["data"];
                let _ = t1.send(Received::Retrain {
                    run_id: data["run_id"].as_str().unwrap_or_default().to_string(),
                    drifted: data["drifted_features"].as_array().map_or(0, Vec::len),
                    verified: verified(secret, &h, &body),
                });
                axum::http::StatusCode::ACCEPTED
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
                });
                axum::http::StatusCode::NO_CONTENT
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}
