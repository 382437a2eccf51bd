//! References kept under `[state] dir`/references: each model's (and each version's)
//! profile with its identity and the source's `ETag`, so a restart does not depend on the
//! source being reachable and a dataset is not profiled again when its digest is unchanged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Loaded, ReferenceIdentity};
use crate::offline::profile::Profile;
use crate::state::fs::write_synced;

#[derive(Debug, Clone)]
pub struct ReferenceStore {
    dir: PathBuf,
}

/// What is stored beside a profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    identity: ReferenceIdentity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
}

/// A file-name-safe form of a model or version name, distinct for distinct names.
fn slot(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02x}"),
        })
        .collect()
}

impl ReferenceStore {
    pub fn in_dir(state_dir: &Path) -> ReferenceStore {
        ReferenceStore { dir: state_dir.join("references") }
    }

    /// A directory for scratch files (datasets being profiled).
    pub fn scratch(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    fn place(&self, model: &str, version: Option<&str>) -> PathBuf {
        let v = version.map_or_else(|| "_".to_string(), |v| format!("v-{}", slot(v)));
        self.dir.join(slot(model)).join(v)
    }

    /// The stored reference and the `ETag` it came with.
    pub fn get(&self, model: &str, version: Option<&str>) -> Option<(Loaded, Option<String>)> {
        let place = self.place(model, version);
        let meta: Meta = serde_json::from_slice(&std::fs::read(place.join("meta.json")).ok()?).ok()?;
        let path = place.join("profile.json");
        let profile = Profile::from_slice(&path, &std::fs::read(&path).ok()?).ok()?;
        Some((Loaded { identity: meta.identity, profile: Arc::new(profile) }, meta.etag))
    }

    /// Versions stored for a model.
    pub fn versions(&self, model: &str) -> Vec<String> {
        let dir = self.dir.join(slot(model));
        let mut out: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let slot = name.strip_prefix("v-")?;
                // the stored identity holds the version as it was
                let meta: Meta = serde_json::from_slice(&std::fs::read(e.path().join("meta.json")).ok()?).ok()?;
                meta.identity.version.filter(|v| self::slot(v) == slot)
            })
            .collect();
        out.sort();
        out
    }

    /// Keeps a reference (profile first, then its identity: a crash between the two leaves
    /// the old identity, which the next fetch corrects).
    pub fn put(&self, model: &str, version: Option<&str>, r: &Loaded, etag: Option<&str>) -> std::io::Result<()> {
        let place = self.place(model, version);
        write_synced(
            &place.join("profile.json"),
            &serde_json::to_vec(r.profile.as_ref()).expect("profile serializes"),
        )?;
        let meta = Meta { identity: r.identity.clone(), etag: etag.map(str::to_string) };
        write_synced(&place.join("meta.json"), &serde_json::to_vec(&meta).expect("meta serializes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offline::profile::PROFILE_FORMAT;

    #[test]
    fn a_reference_survives_in_the_store_per_model_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReferenceStore::in_dir(dir.path());
        let profile =
            Profile { format: PROFILE_FORMAT.into(), source: "s".into(), rows: 0, bins: 10, features: Vec::new() };
        let loaded = |v: Option<&str>| Loaded {
            identity: ReferenceIdentity {
                source: "mlflow:models:/m".into(),
                version: v.map(String::from),
                digest: "d".into(),
            },
            profile: Arc::new(profile.clone()),
        };
        assert!(store.get("m/x", None).is_none());
        store.put("m/x", None, &loaded(None), Some("\"e1\"")).unwrap();
        store.put("m/x", Some("2"), &loaded(Some("2")), None).unwrap();
        store.put("m/x", Some("1.5/a"), &loaded(Some("1.5/a")), None).unwrap();
        let (got, etag) = store.get("m/x", None).unwrap();
        assert_eq!((got.identity, etag.as_deref()), (loaded(None).identity, Some("\"e1\"")));
        assert_eq!(store.get("m/x", Some("2")).unwrap().0.identity.version.as_deref(), Some("2"));
        assert_eq!(store.versions("m/x"), ["1.5/a", "2"]);
        assert!(store.get("m-x", None).is_none(), "names that differ stay apart");
    }
}
