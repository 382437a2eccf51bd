//! `[mlflow]`: the tracking server behind `mlflow:models:/` references.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::actions::validate_url;
use super::{ConfigError, HumanDuration, SecretSource};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlflowSettings {
    /// The tracking server's base URL, e.g. `http://mlflow:5000`.
    #[serde(serialize_with = "crate::redact::ser_url_without_secrets")]
    pub tracking_uri: String,
    /// With a secret: basic auth as this user (the secret is the password). Without:
    /// the secret is a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(flatten)]
    pub credential: SecretSource,
    /// How often aliases and versions are looked up (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<HumanDuration>,
    /// Time allowed for one call (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

const DEFAULT_POLL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the registry is reached: the base URL, the credential read, the intervals.
#[derive(Debug, Clone)]
pub struct Mlflow {
    pub base: String,
    pub username: Option<String>,
    pub secret: Option<String>,
    pub poll: Duration,
    pub timeout: Duration,
}

impl MlflowSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        validate_url("mlflow.tracking_uri", &self.tracking_uri)?;
        if self.credential.given() > 1 {
            return Err(ConfigError::new("mlflow.secret", "give only one of secret, secret_env, secret_file"));
        }
        if self.username.is_some() && self.credential.given() == 0 {
            return Err(ConfigError::new(
                "mlflow.secret",
                "a username needs its password (secret, secret_env or secret_file)",
            ));
        }
        Ok(())
    }

    /// Reads the secret and fills the defaults.
    pub fn resolve(&self) -> Result<Mlflow, ConfigError> {
        Ok(Mlflow {
            base: self.tracking_uri.trim_end_matches('/').to_string(),
            username: self.username.clone(),
            secret: self.credential.resolve().map_err(|e| ConfigError::new("mlflow.secret", e))?,
            poll: self.poll.map_or(DEFAULT_POLL, HumanDuration::get),
            timeout: self.timeout.map_or(DEFAULT_TIMEOUT, HumanDuration::get),
        })
    }
}
