//! A reference profile (`driftd baseline`'s JSON) as a model's `reference` may point at,
//! loaded and compared with a small current dataset.
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use driftd::analysis::analyze::{analyze, AnalyzeOptions, Reference};
use driftd::analysis::dataset::Dataset;
use driftd::analysis::profile::Profile;
use libfuzzer_sys::fuzz_target;

const CURRENT: &str = "x,n,c\n1.5,1,a\n2.5,2,b\n9.5,3,d\n-4.0,,c\n,5,b\n7.25,6,a\n";

fn current() -> &'static Dataset {
    static CURRENT_DS: OnceLock<Dataset> = OnceLock::new();
    CURRENT_DS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("current.csv");
        std::fs::write(&path, CURRENT).unwrap();
        Dataset::load(&path, None).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzzed-profile.json");
    if let Ok(profile) = Profile::from_slice(path, data) {
        for f in ["x", "n", "c"] {
            let _ = profile.fine_bins(f);
        }
        let reference = Reference::Profile(Arc::new(profile), path.to_path_buf());
        let _ = analyze(&reference, current(), &AnalyzeOptions::default());
    }
});
