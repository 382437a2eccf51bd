//! A dataset file as a user may pass it to `driftd analyze` or `baseline` (CSV, JSON Lines
//! or Parquet, picked by the first byte), loaded and compared with itself.
//!
//! polars' readers panic on some malformed files; driftd reads through a guard that turns
//! such a panic into an error naming the file (`read_frame`). libFuzzer's hook would abort
//! on that caught panic too, so the hook here is silent: what escapes the guard still
//! aborts (libfuzzer-sys checks each run for a panic) and is a crash.
#![no_main]

use driftd::analysis::analyze::{analyze, AnalyzeOptions, Reference};
use driftd::analysis::dataset::Dataset;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        // DRIFTD_FUZZ_PANICS=1 shows each panic, caught or not (to reproduce a crash)
        let show = std::env::var_os("DRIFTD_FUZZ_PANICS").is_some();
        std::panic::set_hook(Box::new(move |info| {
            if show {
                eprintln!("{info}\n{}", std::backtrace::Backtrace::force_capture());
            }
        }))
    });
    let Some((&which, body)) = data.split_first() else { return };
    let ext = ["csv", "jsonl", "parquet"][usize::from(which % 3)];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("data.{ext}"));
    std::fs::write(&path, body).unwrap();
    if let Ok(ds) = Dataset::load(&path, None) {
        let _ = analyze(&Reference::Dataset(ds.clone()), &ds, &AnalyzeOptions::default());
    }
});
