//! Outbound HTTP, whatever the call is for (retrain presets, alert receivers, references
//! fetched by URL or from the registry): the clients, the call, one attempt with a
//! timeout, the classification of its result, and jittered exponential backoff;
//! `webhook.rs` signs (and verifies) Standard Webhooks.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;

pub mod webhook;

use crate::redact;
use crate::time::now_s;
use webhook::signature_headers;

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Json(Vec<u8>),
    Form(Vec<(String, String)>),
}

impl Body {
    pub fn json(v: &serde_json::Value) -> Body {
        Body::Json(serde_json::to_vec(v).expect("JSON serializes"))
    }

    /// The body as text, for a log line: a token field as `***`.
    pub fn to_text(&self) -> String {
        match self {
            Body::Json(b) => String::from_utf8_lossy(b).into_owned(),
            // GitLab's and Jenkins' trigger tokens travel as a form field
            Body::Form(f) => f
                .iter()
                .map(|(k, v)| format!("{k}={}", if k == "token" { "***" } else { v }))
                .collect::<Vec<_>>()
                .join("&"),
        }
    }
}

/// How a request authenticates; applied per attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    None,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
    /// A bearer token got per attempt by posting `{"username", "password"}` as JSON to
    /// `token_url`, which answers `{"access_token": ...}` (Airflow 3's `/auth/token`).
    TokenLogin {
        token_url: String,
        user: String,
        password: String,
    },
    /// Jenkins' CSRF crumb, for a caller without a user (a job's trigger token): per
    /// attempt, `GET issuer_url` answers `{"crumb", "crumbRequestField"}` and a session
    /// cookie, and the POST carries both (the crumb is valid in that session only). A 404
    /// there is a Jenkins without CSRF protection: the POST goes without.
    Crumb {
        issuer_url: String,
    },
    /// A Standard Webhooks signature with this secret; `id` is the message id.
    Sign {
        secret: String,
        id: String,
    },
}

/// One prepared POST.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    pub auth: Auth,
    /// How the target's answers read.
    pub dialect: Dialect,
}

/// How a target's answers read beyond HTTP's classes: what its 409 means, and the
/// failures its API documents that a status alone does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// A 409 means the target already has this run (the run id is its key: the webhook's
    /// receivers, Airflow's `dag_run_id`, alert receivers).
    #[default]
    RunKeyed,
    /// Argo: 409 for an existing workflow name from v3.4.5 on; older servers answer 500
    /// with Kubernetes' "already exists", which is the same duplicate.
    Argo,
    /// No run key (Prefect, Kubeflow, GitHub): a 409 is a refusal, not a duplicate.
    Unkeyed,
    /// GitLab's trigger API: no run key; 400 "Insufficient permissions to set pipeline
    /// variables" is the project's variables setting.
    Gitlab,
    /// Jenkins: no run key; 409 is a disabled job, 403 "No valid crumb" an anonymous call.
    Jenkins,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// 2xx.
    Delivered { status: u16 },
    /// 409: the target already has this run; counts as delivered.
    Duplicate { status: u16 },
    /// Connection error, timeout, 408, 429 or 5xx: try again (after `Retry-After` when given).
    Retry { reason: String, status: Option<u16>, after: Option<Duration> },
    /// Any other 4xx: trying again would not help.
    Fail { reason: String, status: u16 },
}

/// Classifies a response status (and its `Retry-After`) as `dialect` speaks.
pub fn classify(status: StatusCode, retry_after: Option<&str>, body_hint: &str, dialect: Dialect) -> Attempt {
    let code = status.as_u16();
    let reason = || {
        let hint: String = body_hint.chars().take(200).collect();
        format!("HTTP {code}{}{}", if hint.is_empty() { "" } else { ": " }, hint.trim())
    };
    let explained = |why: &str| Attempt::Fail { reason: format!("{}; {why}", reason()), status: code };
    match (dialect, code) {
        (Dialect::Argo, 500) if body_hint.contains("already exists") => {
            return Attempt::Duplicate { status: code };
        }
        (Dialect::Jenkins, 409) => {
            return explained("Jenkins answers 409 for a disabled job: enable the job (nothing was started)");
        }
        (Dialect::Jenkins, 403) if body_hint.to_ascii_lowercase().contains("crumb") => {
            return explained(
                "Jenkins refused the CSRF crumb (it holds for one session: a proxy that drops the session \
                 cookie breaks it); a user with an API token needs none: set [retrain] username",
            );
        }
        (Dialect::Gitlab, 400) if body_hint.contains("Insufficient permissions to set pipeline variables") => {
            return explained(
                "the project refuses pipeline variables (GitLab's default for projects made since 17.7): \
                 Settings > CI/CD > Variables, 'Minimum role to use pipeline variables' at Developer or above \
                 (ci_pipeline_variables_minimum_override_role), or the trigger token's owner above it",
            );
        }
        _ => {}
    }
    if status.is_success() {
        Attempt::Delivered { status: code }
    } else if status == StatusCode::CONFLICT && matches!(dialect, Dialect::RunKeyed | Dialect::Argo) {
        Attempt::Duplicate { status: code }
    } else if status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
    {
        Attempt::Retry { reason: reason(), status: Some(code), after: retry_after.and_then(parse_retry_after) }
    } else {
        Attempt::Fail { reason: reason(), status: code }
    }
}

/// `Retry-After` as seconds or an HTTP date; capped at one hour.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    let d = match v.parse::<u64>() {
        Ok(s) => Duration::from_secs(s),
        Err(_) => httpdate::parse_http_date(v).ok()?.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO),
    };
    Some(d.min(Duration::from_secs(3600)))
}

/// Delay before attempt `attempt + 1` (attempt counts from 1): full jitter over
/// `initial · 2^(attempt-1)`, capped at `max`; a `Retry-After` is honoured as a floor.
pub fn backoff(initial: Duration, max: Duration, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(20)).min(max);
    // half fixed, half random: never hammering, never waiting for nothing
    let jittered = exp / 2 + exp.mul_f64(jitter() / 2.0);
    match retry_after {
        Some(ra) => jittered.max(ra),
        None => jittered,
    }
}

/// A number in [0, 1) that differs per call and per process.
fn jitter() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let mut x = STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed) ^ seed;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A shared HTTP client (connection pool, rustls).
pub fn client() -> reqwest::Client {
    builder().build().expect("the HTTP client builds")
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("driftd/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
}

/// The client of the retrain and alert calls: it follows no redirect. A 307 or 308
/// would re-send the body (for GitLab, its trigger token) wherever the target points;
/// a redirect fails the call instead, naming where it pointed.
pub fn action_client() -> reqwest::Client {
    builder().redirect(reqwest::redirect::Policy::none()).build().expect("the HTTP client builds")
}

/// The most of an answer's body read: enough for an error's hint or a token.
const BODY_LIMIT: usize = 64 * 1024;

/// The start of a response's body (at most `BODY_LIMIT` bytes), as text.
async fn text_capped(mut resp: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = BODY_LIMIT - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= BODY_LIMIT {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// A redirect's target, for the reason a call failed.
fn redirect_hint(resp: &reqwest::Response) -> Option<String> {
    resp.status().is_redirection().then(|| {
        let to = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("?");
        format!(
            "redirected to {}; driftd follows no redirect: configure the final URL",
            redact::url_without_secrets(to)
        )
    })
}

/// Logs in for a bearer token (`Auth::TokenLogin`).
async fn login_token(
    http: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Result<String, Attempt> {
    let resp = http
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::json!({"username": user, "password": password}).to_string())
        .send()
        .await
        .map_err(|e| Attempt::Retry {
            reason: format!("token login: {}", error_text(&e)),
            status: None,
            after: None,
        })?;
    let status = resp.status();
    let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let text = text_capped(resp).await;
    if !status.is_success() {
        return Err(match classify(status, retry_after.as_deref(), &text, Dialect::RunKeyed) {
            Attempt::Retry { reason, status, after } => {
                Attempt::Retry { reason: format!("token login: {reason}"), status, after }
            }
            _ => Attempt::Fail { reason: format!("token login: HTTP {}", status.as_u16()), status: status.as_u16() },
        });
    }
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("access_token").and_then(|t| t.as_str()).map(str::to_string))
        .ok_or_else(|| Attempt::Fail {
            reason: "token login: no access_token in the answer".into(),
            status: status.as_u16(),
        })
}

/// Gets a Jenkins crumb (`Auth::Crumb`): the header to send it in, the crumb, and the
/// session cookie it belongs to; `None` where Jenkins has no crumb issuer (404: CSRF
/// protection off).
async fn jenkins_crumb(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<Option<(String, String, String)>, Attempt> {
    let resp = http.get(url).timeout(timeout).send().await.map_err(|e| Attempt::Retry {
        reason: format!("crumb: {}", error_text(&e)),
        status: None,
        after: None,
    })?;
    let status = resp.status();
    if status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    // the session: every cookie set, as `name=value`
    let cookie = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::trim).map(str::to_string))
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let hint = redirect_hint(&resp);
    let text = text_capped(resp).await;
    if !status.is_success() {
        let why = |reason: String| format!("crumb from {}: {reason}", redact::url_for_display(url));
        return Err(
            match classify(status, retry_after.as_deref(), hint.as_deref().unwrap_or(&text), Dialect::Unkeyed) {
                Attempt::Retry { reason, status, after } => Attempt::Retry { reason: why(reason), status, after },
                Attempt::Fail { reason, status } => Attempt::Fail {
                    reason: format!(
                        "{}; Jenkins gives crumbs to callers with Overall/Read: grant it to anonymous, or set \
                     [retrain] username with an API token",
                        why(reason)
                    ),
                    status,
                },
                other => other,
            },
        );
    }
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let pick = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    match (pick("crumbRequestField"), pick("crumb")) {
        (Some(field), Some(crumb)) => Ok(Some((field, crumb, cookie))),
        _ => Err(Attempt::Fail {
            reason: format!("crumb from {}: no crumb in the answer", redact::url_for_display(url)),
            status: status.as_u16(),
        }),
    }
}

/// reqwest's error with its cause chain ("error sending request" alone says nothing).
pub fn error_text(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() { "timed out".to_string() } else { e.to_string() };
    // reqwest names the URL: show it without its credentials
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), &redact::url_for_display(u.as_str()));
    }
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

/// `req` with `auth`'s credentials (a login first for `Auth::TokenLogin`).
async fn authed(
    http: &reqwest::Client,
    req: reqwest::RequestBuilder,
    auth: &Auth,
    timeout: Duration,
) -> Result<reqwest::RequestBuilder, Attempt> {
    Ok(match auth {
        Auth::None | Auth::Sign { .. } => req,
        Auth::Basic { user, password } => req.basic_auth(user, Some(password)),
        Auth::Bearer(t) => req.bearer_auth(t),
        Auth::TokenLogin { token_url, user, password } => {
            req.bearer_auth(login_token(http, token_url, user, password, timeout).await?)
        }
        Auth::Crumb { issuer_url } => match jenkins_crumb(http, issuer_url, timeout).await? {
            Some((field, crumb, cookie)) if cookie.is_empty() => req.header(field, crumb),
            Some((field, crumb, cookie)) => req.header(field, crumb).header(reqwest::header::COOKIE, cookie),
            None => req,
        },
    })
}

/// `auth` with its login done: an `Auth::TokenLogin` becomes the bearer token it got, so
/// that the calls of one attempt (Airflow 3's run, then its DAG read) log in once.
pub async fn logged_in(http: &reqwest::Client, auth: &Auth, timeout: Duration) -> Result<Auth, Attempt> {
    match auth {
        Auth::TokenLogin { token_url, user, password } => {
            Ok(Auth::Bearer(login_token(http, token_url, user, password, timeout).await?))
        }
        other => Ok(other.clone()),
    }
}

/// A GET with `auth`: the JSON answer of a 2xx, else why not.
pub async fn get_json(
    http: &reqwest::Client,
    url: &str,
    auth: &Auth,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let req = authed(http, http.get(url).timeout(timeout), auth, timeout).await.map_err(|a| format!("{a:?}"))?;
    let resp = req.send().await.map_err(|e| error_text(&e))?;
    let status = resp.status();
    let text = text_capped(resp).await;
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))
}

/// Sends one attempt of a call.
pub async fn send(http: &reqwest::Client, call: &Call, timeout: Duration) -> Attempt {
    let mut req = http.post(&call.url).timeout(timeout);
    for (k, v) in &call.headers {
        req = req.header(*k, v);
    }
    req = match authed(http, req, &call.auth, timeout).await {
        Ok(req) => req,
        Err(a) => return a,
    };
    req = match &call.body {
        Body::Json(bytes) => {
            if let Auth::Sign { secret, id } = &call.auth {
                for (k, v) in signature_headers(secret, id, bytes, now_s()) {
                    req = req.header(k, v);
                }
            }
            req.header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes.clone())
        }
        Body::Form(fields) => req.form(fields),
    };
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
            let text = match redirect_hint(&resp) {
                Some(hint) => hint,
                None if status.is_success() => String::new(),
                None => text_capped(resp).await,
            };
            classify(status, retry_after.as_deref(), &text, call.dialect)
        }
        Err(e) => Attempt::Retry { reason: error_text(&e), status: None, after: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(status: StatusCode, retry_after: Option<&str>, body: &str) -> Attempt {
        classify(status, retry_after, body, Dialect::RunKeyed)
    }

    #[test]
    fn statuses_are_classified_as_the_issue_says() {
        assert_eq!(generic(StatusCode::OK, None, ""), Attempt::Delivered { status: 200 });
        assert_eq!(generic(StatusCode::NO_CONTENT, None, ""), Attempt::Delivered { status: 204 });
        assert_eq!(generic(StatusCode::CONFLICT, None, ""), Attempt::Duplicate { status: 409 });
        assert!(matches!(
            generic(StatusCode::TOO_MANY_REQUESTS, Some("7"), ""),
            Attempt::Retry { after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(matches!(generic(StatusCode::BAD_GATEWAY, None, ""), Attempt::Retry { after: None, .. }));
        assert!(matches!(generic(StatusCode::REQUEST_TIMEOUT, None, ""), Attempt::Retry { .. }));
        assert!(matches!(generic(StatusCode::UNAUTHORIZED, None, "no"), Attempt::Fail { status: 401, .. }));
        assert!(matches!(generic(StatusCode::UNPROCESSABLE_ENTITY, None, ""), Attempt::Fail { status: 422, .. }));
    }

    /// What each service's own failure answers mean (their specifications and server code).
    #[test]
    fn each_target_is_read_in_its_own_dialect() {
        let conflict = StatusCode::CONFLICT;
        assert_eq!(classify(conflict, None, "", Dialect::Argo), Attempt::Duplicate { status: 409 });
        // Argo before v3.4.5: the Kubernetes error in a 500
        let old_argo = r#"{"code":2,"message":"workflows.argoproj.io \"driftd-m-1\" already exists"}"#;
        let got = classify(StatusCode::INTERNAL_SERVER_ERROR, None, old_argo, Dialect::Argo);
        assert_eq!(got, Attempt::Duplicate { status: 500 });
        let other_500 = classify(StatusCode::INTERNAL_SERVER_ERROR, None, "etcd timeout", Dialect::Argo);
        assert!(matches!(other_500, Attempt::Retry { .. }), "{other_500:?}");
        // a 500 saying "already exists" elsewhere is a server error like any other
        let elsewhere = classify(StatusCode::INTERNAL_SERVER_ERROR, None, old_argo, Dialect::RunKeyed);
        assert!(matches!(elsewhere, Attempt::Retry { .. }));
        // Jenkins: a disabled job, an anonymous call without a crumb
        match classify(conflict, None, "", Dialect::Jenkins) {
            Attempt::Fail { status: 409, reason } => assert!(reason.contains("disabled job"), "{reason}"),
            other => panic!("{other:?}"),
        }
        match classify(
            StatusCode::FORBIDDEN,
            None,
            "Error 403 No valid crumb was included in the request",
            Dialect::Jenkins,
        ) {
            Attempt::Fail { status: 403, reason } => assert!(reason.contains("username"), "{reason}"),
            other => panic!("{other:?}"),
        }
        // GitLab: the project's pipeline-variables setting
        let body = r#"{"message":{"base":["Insufficient permissions to set pipeline variables"]}}"#;
        match classify(StatusCode::BAD_REQUEST, None, body, Dialect::Gitlab) {
            Attempt::Fail { status: 400, reason } => {
                assert!(reason.contains("Minimum role to use pipeline variables"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // no run key: a 409 is no proof the run exists
        for d in [Dialect::Unkeyed, Dialect::Gitlab, Dialect::Jenkins] {
            assert!(matches!(classify(conflict, None, "", d), Attempt::Fail { status: 409, .. }), "{d:?}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&later).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_jittered_and_capped() {
        let (i, max) = (Duration::from_secs(1), Duration::from_secs(300));
        for attempt in 1..=12 {
            let exp = (i * (1 << (attempt - 1))).min(max);
            let d = backoff(i, max, attempt, None);
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d:?} vs {exp:?}");
        }
        assert!(backoff(i, max, 1, Some(Duration::from_secs(9))) >= Duration::from_secs(9));
        let draws: std::collections::HashSet<u128> = (0..20).map(|_| backoff(i, max, 5, None).as_nanos()).collect();
        assert!(draws.len() > 10, "jitter varies");
    }
}
