//! Where a model's reference comes from, as `reference = "..."` names it.

use std::fmt;
use std::path::PathBuf;

/// A reference's origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReferenceSource {
    /// A dataset (CSV, TSV, Parquet, JSON Lines) or a profile (`.json`) on disk; re-read
    /// when its content changes.
    File(PathBuf),
    /// A dataset or profile at an `http(s)://` URL; refreshed with `If-None-Match`.
    Url(String),
    /// The MLflow model registry: the version an alias points at
    /// (`mlflow:models:/NAME@ALIAS`), or each live version its own
    /// (`mlflow:models:/NAME`), read from the version's `driftd.reference` tag.
    Registry { model: String, alias: Option<String> },
}

const REGISTRY_PREFIX: &str = "mlflow:models:/";

impl ReferenceSource {
    /// Reads a `reference` value; the error says what was expected.
    pub fn parse(text: &str) -> Result<ReferenceSource, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        if let Some(rest) = text.strip_prefix(REGISTRY_PREFIX) {
            let (model, alias) = match rest.split_once('@') {
                Some((m, a)) => (m, Some(a)),
                None => (rest, None),
            };
            if model.is_empty() || model.contains('/') || alias.is_some_and(|a| a.is_empty() || a.contains('/')) {
                return Err(format!(
                    "'{text}' is not a registry reference (expected mlflow:models:/NAME@ALIAS or mlflow:models:/NAME)"
                ));
            }
            return Ok(ReferenceSource::Registry { model: model.to_string(), alias: alias.map(str::to_string) });
        }
        if text.starts_with("mlflow:") || text.starts_with("models:/") || text.starts_with("runs:/") {
            return Err(format!(
                "'{text}' is not a registry reference (expected mlflow:models:/NAME@ALIAS or mlflow:models:/NAME)"
            ));
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            return Ok(ReferenceSource::Url(text.to_string()));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(format!(
                "'{scheme}://' references are not supported (use a path, http(s):// or mlflow:models:/)"
            ));
        }
        Ok(ReferenceSource::File(PathBuf::from(text)))
    }

    /// True when each live model version has a reference of its own.
    pub fn per_version(&self) -> bool {
        matches!(self, ReferenceSource::Registry { alias: None, .. })
    }

    pub fn is_registry(&self) -> bool {
        matches!(self, ReferenceSource::Registry { .. })
    }
}

impl fmt::Display for ReferenceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReferenceSource::File(p) => write!(f, "{}", p.display()),
            ReferenceSource::Url(u) => f.write_str(u),
            ReferenceSource::Registry { model, alias: Some(a) } => write!(f, "{REGISTRY_PREFIX}{model}@{a}"),
            ReferenceSource::Registry { model, alias: None } => write!(f, "{REGISTRY_PREFIX}{model}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_reference_parses_and_prints_back() {
        for (text, per_version) in [
            ("data/reference.parquet", false),
            ("https://models.example/credit/profile.json", false),
            ("mlflow:models:/credit-risk@champion", false),
            ("mlflow:models:/credit-risk", true),
        ] {
            let s = ReferenceSource::parse(text).unwrap();
            assert_eq!(s.to_string(), text);
            assert_eq!(s.per_version(), per_version, "{text}");
        }
        assert_eq!(
            ReferenceSource::parse("mlflow:models:/m@a").unwrap(),
            ReferenceSource::Registry { model: "m".into(), alias: Some("a".into()) }
        );
        for bad in ["", "mlflow:models:/", "mlflow:models:/m@", "models:/m@a", "s3://bucket/ref.csv", "mlflow:runs:/x"]
        {
            assert!(ReferenceSource::parse(bad).is_err(), "{bad}");
        }
    }
}
