//! Each input the fuzzers (`fuzz/`, `scripts/fuzz`) found failing, kept as it was found
//! (`tests/fixtures/fuzz/`, named after the target that found it) and run through the real
//! binary: a clear error naming the file and what is wrong, exit code 2, no crash.

use crate::helpers::{driftd, root};

/// A `dataset` target input as the file it stands for: the first byte picks the format.
fn dataset_file(name: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let bytes = std::fs::read(root().join("tests/fixtures/fuzz").join(name)).unwrap();
    let ext = ["csv", "jsonl", "parquet"][usize::from(bytes[0] % 3)];
    let path = dir.join(format!("{name}.{ext}"));
    std::fs::write(&path, &bytes[1..]).unwrap();
    path
}

/// polars-io 0.55.2 reads out of bounds on a CSV that ends right after an opening quote,
/// or whose quotes leave one of its pieces ending so (a debug build panics in
/// `parse_lines`: "slice::get_unchecked requires that the range is within the slice");
/// found by the `dataset` target, the first within a minute.
#[test]
fn a_csv_ending_in_an_open_quote_is_refused_before_polars_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let found = [
        ("dataset-csv-ends-in-open-quote", 2),
        ("dataset-csv-ragged-ends-in-open-quote", 4),
        ("dataset-csv-odd-quotes", 624),
    ];
    for (name, line) in found {
        let path = dataset_file(name, dir.path());
        let p = path.to_str().unwrap();
        for args in
            [vec!["analyze", "--reference", p, "--current", p], vec!["baseline", "--data", p, "--out", "x.json"]]
        {
            let o = driftd(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(p), "{err}");
            assert!(err.contains(&format!("a quote on line {line} is never closed")), "{err}");
        }
    }
}

/// polars-parquet 0.55 sizes a vector from the count a corrupt footer declares: two (a
/// fixture's footer with a few bytes changed) made it ask for 81 GB and 198 GB, and the
/// failed allocation aborted the process; a third declared 1.9 billion entries in a list it
/// skips, which took 7 s to refuse (12 s under the fuzzer's timeout). Found by the `dataset`
/// target; each is now refused before polars reads the file.
#[test]
fn a_parquet_footer_declaring_more_than_it_holds_is_refused_before_polars_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let found = [
        ("dataset-parquet-footer-declares-81gb", 1_687_358_482, 3084),
        ("dataset-parquet-footer-declares-198gb", 1_905_258_986, 3084),
        ("dataset-parquet-footer-7s-of-skipping", 1_905_258_986, 2981),
    ];
    for (name, entries, left) in found {
        let path = dataset_file(name, dir.path());
        let p = path.to_str().unwrap();
        let o = driftd(&["analyze", "--reference", p, "--current", p]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        let why = format!("its footer is corrupt: a list of {entries} entries where {left} bytes are left");
        assert!(err.contains(p) && err.contains(&why), "{name}: {err}");
    }
}

/// polars-parquet 0.55 takes a data page's `num_values` (an i32) as a `usize` and
/// reserves a validity bitmap of that many bits: a page declaring -11 values asked for
/// 2^61 bytes and the failed allocation aborted the process. Found by the `dataset`
/// target in the 60 s of a CI run (2026-12-07); the page headers are now walked and a
/// negative count refused before polars reads the file.
#[test]
fn a_parquet_page_declaring_a_negative_count_is_refused_before_polars_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dataset_file("dataset-parquet-page-negative-num-values", dir.path());
    let p = path.to_str().unwrap();
    let o = driftd(&["analyze", "--reference", p, "--current", p]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(p) && err.contains("a page at byte 40 is corrupt: num_values -11"), "{err}");
}
