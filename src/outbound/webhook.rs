//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`. A `whsec_`-prefixed secret is base64 after the prefix, as
//! the spec's libraries take it; any other secret is used as its bytes.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::hmac;

fn key_bytes(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(rest) => B64.decode(rest).unwrap_or_else(|_| secret.as_bytes().to_vec()),
        None => secret.as_bytes().to_vec(),
    }
}

/// The `webhook-signature` header value for a message.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes(secret));
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1,{}", B64.encode(ctx.sign().as_ref()))
}

/// The headers of a message signed at `now_s` (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`).
pub fn signature_headers(secret: &str, id: &str, body: &[u8], now_s: i64) -> [(&'static str, String); 3] {
    [
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", now_s.to_string()),
        ("webhook-signature", sign(secret, id, now_s, body)),
    ]
}

/// How far a message's timestamp may be from the receiver's clock, either way (the spec's
/// suggestion): a captured request replayed later is refused.
pub const TOLERANCE_S: i64 = 300;

/// Why a message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the signature does not match")]
    Signature,
    #[error("the timestamp is {0} s away from now (tolerance {TOLERANCE_S} s): a replayed or delayed message")]
    Stale(i64),
}

/// What a receiver checks (use this one): the signature, and the timestamp within
/// `TOLERANCE_S` of `now_s`, the receiver's clock in Unix seconds.
pub fn verify_fresh(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now_s: i64,
) -> Result<(), Refused> {
    if !verify(secret, id, timestamp, body, header) {
        return Err(Refused::Signature);
    }
    let skew = now_s.saturating_sub(timestamp);
    if skew.saturating_abs() > TOLERANCE_S {
        return Err(Refused::Stale(skew));
    }
    Ok(())
}

/// Checks a `webhook-signature` header (space-separated `v1,<sig>` entries) in constant
/// time, and nothing else: `verify_fresh` also bounds the timestamp.
pub fn verify(secret: &str, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes(secret));
    let mut msg = Vec::with_capacity(id.len() + body.len() + 24);
    msg.extend_from_slice(id.as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(timestamp.to_string().as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(body);
    header.split_whitespace().filter_map(|s| s.strip_prefix("v1,")).any(|sig| match B64.decode(sig) {
        Ok(tag) => hmac::verify(&key, &msg, &tag).is_ok(),
        Err(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector published with the Standard Webhooks reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_published_vector_signs_and_verifies() {
        assert_eq!(sign(SECRET, ID, TS, BODY), SIGNATURE);
        assert!(verify(SECRET, ID, TS, BODY, SIGNATURE));
        assert!(verify(SECRET, ID, TS, BODY, &format!("v1,bm90IGl0 {SIGNATURE}")));
    }

    #[test]
    fn a_message_is_fresh_only_within_the_tolerance() {
        assert_eq!(verify_fresh(SECRET, ID, TS, BODY, SIGNATURE, TS + 10), Ok(()));
        assert_eq!(verify_fresh(SECRET, ID, TS, BODY, SIGNATURE, TS - TOLERANCE_S), Ok(()));
        assert_eq!(verify_fresh(SECRET, ID, TS, BODY, SIGNATURE, TS + 301), Err(Refused::Stale(301)));
        assert_eq!(verify_fresh(SECRET, ID, TS, BODY, SIGNATURE, TS - 3600), Err(Refused::Stale(-3600)));
        assert_eq!(verify_fresh(SECRET, ID, TS + 1, BODY, SIGNATURE, TS), Err(Refused::Signature));
        assert_eq!(verify_fresh(SECRET, ID, i64::MIN, BODY, SIGNATURE, i64::MAX), Err(Refused::Signature));
    }

    #[test]
    fn anything_tampered_fails() {
        assert!(!verify(SECRET, ID, TS, br#"{"test": 2432232315}"#, SIGNATURE));
        assert!(!verify(SECRET, "msg_other", TS, BODY, SIGNATURE));
        assert!(!verify(SECRET, ID, TS + 1, BODY, SIGNATURE));
        assert!(!verify("whsec_bm90IHRoZSBzZWNyZXQ=", ID, TS, BODY, SIGNATURE));
        assert!(!verify(SECRET, ID, TS, BODY, "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
    }
}
