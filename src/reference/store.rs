//! References kept under `[state] dir`/references: each model's (and each version's)
//! profile with its identity and the source's `ETag`, so a restart does not depend on the
//! source being reachable and a dataset is not profiled again when its digest is unchanged.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use serde::{Deserialize, Serialize};

use super::{Loaded, ReferenceIdentity};
use crate::analysis::profile::Profile;
use crate::fs::write_synced;

#[derive(Debug, Clone)]
pub struct ReferenceStore {
    dir: PathBuf,
    /// Profiles read or written in this process, by file name: a profile that models
    /// share is read once, written once and held once.
    shared: Arc<Mutex<HashMap<String, Weak<Profile>>>>,
}

/// What is stored beside a profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    identity: ReferenceIdentity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    /// The profile's file under `profiles/`, named by its digest (older stores: the
    /// model's own `profile.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile: Option<String>,
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
        ReferenceStore { dir: state_dir.join("references"), shared: Arc::default() }
    }

    /// A directory for scratch files (datasets being profiled).
    pub fn scratch(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    fn place(&self, model: &str, version: Option<&str>) -> PathBuf {
        let v = version.map_or_else(|| "_".to_string(), |v| format!("v-{}", slot(v)));
        self.dir.join(slot(model)).join(v)
    }

    fn profiles_dir(&self) -> PathBuf {
        self.dir.join(".profiles")
    }

    /// The stored reference and the `ETag` it came with.
    pub fn get(&self, model: &str, version: Option<&str>) -> Option<(Loaded, Option<String>)> {
        let place = self.place(model, version);
        let meta: Meta = serde_json::from_slice(&std::fs::read(place.join("meta.json")).ok()?).ok()?;
        let profile = match &meta.profile {
            Some(file) => {
                let held = self.shared.lock().expect("store lock").get(file).and_then(Weak::upgrade);
                match held {
                    Some(p) => p,
                    None => {
                        let path = self.profiles_dir().join(file);
                        let p = Arc::new(Profile::from_slice(&path, &std::fs::read(&path).ok()?).ok()?);
                        self.shared.lock().expect("store lock").insert(file.clone(), Arc::downgrade(&p));
                        p
                    }
                }
            }
            None => {
                let path = place.join("profile.json");
                Arc::new(Profile::from_slice(&path, &std::fs::read(&path).ok()?).ok()?)
            }
        };
        Some((Loaded { identity: meta.identity, profile }, meta.etag))
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
    /// the old identity, which the next fetch corrects). The profile is stored once under
    /// its digest, whichever models use it.
    pub fn put(&self, model: &str, version: Option<&str>, r: &Loaded, etag: Option<&str>) -> std::io::Result<()> {
        let place = self.place(model, version);
        let file = self.keep_profile(&r.profile)?;
        let meta = Meta { identity: r.identity.clone(), etag: etag.map(str::to_string), profile: Some(file) };
        write_synced(&place.join("meta.json"), &serde_json::to_vec(&meta).expect("meta serializes"))?;
        // an older store's copy of its own
        let _ = std::fs::remove_file(place.join("profile.json"));
        Ok(())
    }

    /// The file name a profile is stored under, written unless this process wrote (or
    /// read) that very profile already.
    fn keep_profile(&self, profile: &Arc<Profile>) -> std::io::Result<String> {
        let known = self
            .shared
            .lock()
            .expect("store lock")
            .iter()
            .find_map(|(file, held)| held.upgrade().filter(|p| Arc::ptr_eq(p, profile)).map(|_| file.clone()));
        if let Some(file) = known {
            return Ok(file);
        }
        let bytes = serde_json::to_vec(profile.as_ref()).expect("profile serializes");
        let file = format!("{}.json", super::digest(&bytes));
        let path = self.profiles_dir().join(&file);
        if !path.exists() {
            write_synced(&path, &bytes)?;
        }
        let mut shared = self.shared.lock().expect("store lock");
        shared.retain(|_, p| p.strong_count() > 0);
        shared.insert(file.clone(), Arc::downgrade(profile));
        Ok(file)
    }

    /// Removes the stored profiles no model or version names any more; returns how many.
    pub fn collect_garbage(&self) -> usize {
        let metas = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|model| std::fs::read_dir(model.path()).into_iter().flatten().flatten())
            .filter_map(|slot| std::fs::read(slot.path().join("meta.json")).ok())
            .filter_map(|bytes| serde_json::from_slice::<Meta>(&bytes).ok());
        let named: BTreeSet<String> = metas.filter_map(|m| m.profile).collect();
        let mut removed = 0;
        for entry in std::fs::read_dir(self.profiles_dir()).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") && !named.contains(&name) && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::profile::PROFILE_FORMAT;

    #[test]
    fn a_reference_survives_in_the_store_per_model_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReferenceStore::in_dir(dir.path());
        let profile = Profile {
            format: PROFILE_FORMAT.into(),
            source: "s".into(),
            rows: 0,
            bins: 10,
            features: Vec::new(),
            fine_bins: Default::default(),
        };
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

    #[test]
    fn models_that_share_a_profile_store_and_hold_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReferenceStore::in_dir(dir.path());
        let profile = |rows| {
            Arc::new(Profile {
                format: PROFILE_FORMAT.into(),
                source: "s".into(),
                rows,
                bins: 10,
                features: Vec::new(),
                fine_bins: Default::default(),
            })
        };
        let identity = ReferenceIdentity { source: "r.csv".into(), version: None, digest: "d".into() };
        let shared = Loaded { identity: identity.clone(), profile: profile(1) };
        for m in ["a", "b", "c"] {
            store.put(m, None, &shared, None).unwrap();
        }
        let files = || std::fs::read_dir(store.profiles_dir()).unwrap().count();
        assert_eq!(files(), 1, "one file for three models");
        // read back in a new process: one profile in memory for all three
        let again = ReferenceStore::in_dir(dir.path());
        let (a, b) = (again.get("a", None).unwrap().0, again.get("b", None).unwrap().0);
        assert!(Arc::ptr_eq(&a.profile, &b.profile));
        // a swap of one model leaves the old profile to the others; when none names it, it goes
        store.put("a", None, &Loaded { identity: identity.clone(), profile: profile(2) }, None).unwrap();
        assert_eq!((files(), store.collect_garbage()), (2, 0));
        for m in ["b", "c"] {
            store.put(m, None, &Loaded { identity: identity.clone(), profile: profile(2) }, None).unwrap();
        }
        assert_eq!(store.collect_garbage(), 1);
        assert_eq!(files(), 1);
        assert_eq!(again.get("c", None).unwrap().0.profile.rows, 2);
    }
}
