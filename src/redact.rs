//! What may authenticate a call, kept out of everything driftd shows: logs, error texts,
//! the retrain history, the API and `config check`.

/// A URL without what may be a credential in it (user info, query, fragment).
pub fn url_without_secrets(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        // a relative one: its path only
        Err(_) => url.split(['?', '#']).next().unwrap_or_default().to_string(),
    }
}

/// A configured URL as logs, errors, the API and `config check` show it: where it points
/// (scheme, host, port), never what may authenticate the call (user info, path, query: a
/// Slack webhook's path is its credential, Jenkins takes `?token=`).
pub fn url_for_display(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) if u.has_host() => {
            let rest = if u.path().len() > 1 || u.query().is_some() { "/***" } else { "" };
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{}{port}{rest}", u.scheme(), u.host_str().unwrap_or_default())
        }
        _ => "***".to_string(),
    }
}

/// Whether a librdkafka property holds a credential (`sasl.password`,
/// `ssl.key.password`, `ssl.keystore.password`, `sasl.oauthbearer.client.secret`, the
/// PEM of a private key, the OAUTHBEARER config).
pub fn is_secret_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with("password")
        || k.ends_with("secret")
        || matches!(k.as_str(), "ssl.key.pem" | "ssl_key" | "sasl.oauthbearer.config")
}

/// `text` (an error or a log line of librdkafka's, which may echo a property it refused)
/// with every credential among `options` replaced by `***`: the whole value, and for a
/// value made of pieces (`sasl.oauthbearer.config`: `name=value ...`) each piece, each
/// piece's value, and the rest of the value from each piece on (librdkafka quotes a
/// malformed config "beginning at" the piece it could not read).
pub fn scrub_options(text: &str, options: &std::collections::BTreeMap<String, String>) -> String {
    let mut secrets: Vec<&str> = Vec::new();
    for (_, v) in options.iter().filter(|(k, _)| is_secret_option(k)) {
        let v = v.trim();
        secrets.push(v);
        for (at, _) in v.match_indices([' ', ',', ';']) {
            secrets.push(v[at + 1..].trim());
        }
        for piece in v.split([' ', ',', ';']) {
            secrets.push(piece.trim());
            secrets.extend(piece.split_once('=').map(|(_, s)| s.trim()));
        }
    }
    // longest first: a secret holding another is replaced whole
    secrets.retain(|s| s.len() >= 4);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in secrets {
        if out.contains(s) {
            out = out.replace(s, "***");
        }
    }
    out
}

/// `serialize_with` for librdkafka properties: credentials as `***`.
pub fn ser_options<S: serde::Serializer>(
    options: &std::collections::BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(options.iter().map(|(k, v)| (k, if is_secret_option(k) { "***" } else { v.as_str() })))
}

/// `serialize_with` for a receiver's URL: `url_for_display`.
pub fn ser_url_for_display<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&url_for_display(url))
}

/// `serialize_with` for an API's URL: `url_without_secrets`.
pub fn ser_url_without_secrets<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&url_without_secrets(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_displayed_url_keeps_where_it_points_and_nothing_that_authenticates() {
        let cases = [
            ("https://hooks.slack.com/services/T0/B0/XYZSECRET", "https://hooks.slack.com/***"),
            ("http://user:SECRET@127.0.0.1:8080/job/x/build?token=SECRET", "http://127.0.0.1:8080/***"),
            ("http://[::1]:9093/", "http://[::1]:9093"),
            ("https://events.pagerduty.com", "https://events.pagerduty.com"),
            ("not a url SECRET", "***"),
        ];
        for (url, shown) in cases {
            assert_eq!(url_for_display(url), shown);
        }
    }

    #[test]
    fn credentials_echoed_by_librdkafka_are_scrubbed() {
        let options = std::collections::BTreeMap::from([
            ("sasl.oauthbearer.client.secret".to_string(), "s3cr3t-value".to_string()),
            ("sasl.oauthbearer.config".to_string(), "principal=admin clientSecret=hunter22 SEKRET-456".to_string()),
            ("sasl.username".to_string(), "alice".to_string()),
        ]);
        let text =
            "Failed: `sasl.oauthbearer.client.secret` s3cr3t-value; config \"principal=admin clientSecret=hunter22\" \
                    bad: hunter22; Unrecognized sasl.oauthbearer.config beginning at: SEKRET-456; user alice";
        let shown = scrub_options(text, &options);
        assert!(!shown.contains("s3cr3t") && !shown.contains("hunter22") && !shown.contains("SEKRET"), "{shown}");
        assert!(shown.contains("user alice"), "not a credential: {shown}");
    }

    #[test]
    fn credential_properties_are_recognised() {
        for k in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
        ] {
            assert!(is_secret_option(k), "{k}");
        }
        for k in ["sasl.username", "security.protocol", "ssl.ca.location", "sasl.mechanism"] {
            assert!(!is_secret_option(k), "{k}");
        }
    }
}
