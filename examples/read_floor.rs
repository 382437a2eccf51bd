//! The floor for `analyze`: polars reading the two files (both at once, as `analyze` reads
//! them) and nothing else.
//!
//! cargo run --release --example read_floor -- [--pandas-nulls | --driftd] REFERENCE CURRENT
//!
//! - no flag: polars alone, default options (header, separator, types inferred from the
//!   first 10,000 rows as driftd has them inferred): the floor;
//! - `--pandas-nulls`: the same, given pandas' missing-value words for every column, as
//!   earlier stops' floor was (polars then compares every field with each word);
//! - `--driftd`: driftd's own read (`read_frame`: its checks of the file, the words only
//!   for the text columns that hold one).

use std::path::{Path, PathBuf};
use std::time::Instant;

use polars::prelude::*;

fn polars_alone(path: &Path, pandas_nulls: bool) -> PolarsResult<DataFrame> {
    let tsv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let mut parse = CsvParseOptions::default().with_separator(if tsv { b'\t' } else { b',' });
    if pandas_nulls {
        let words = driftd::analysis::dataset::CSV_NULL_VALUES.iter().map(|s| (*s).into()).collect();
        parse = parse.with_null_values(Some(NullValues::AllColumns(words)));
    }
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(10_000))
        .with_parse_options(parse)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))?
        .finish()
}

fn main() {
    let mut args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let mode = match args.first().and_then(|a| a.to_str()) {
        Some(flag @ ("--pandas-nulls" | "--driftd")) => {
            let flag = flag.to_string();
            args.remove(0);
            flag
        }
        _ => String::new(),
    };
    let [reference, current] = args.as_slice() else {
        eprintln!("usage: read_floor [--pandas-nulls | --driftd] REFERENCE CURRENT");
        std::process::exit(2);
    };
    let read = |path: &PathBuf| match mode.as_str() {
        "--driftd" => driftd::analysis::dataset::read_frame(path).map_err(|e| e.to_string()),
        m => polars_alone(path, m == "--pandas-nulls").map_err(|e| e.to_string()),
    };
    let started = Instant::now();
    let (r, c) = rayon::join(|| read(reference), || read(current));
    let (r, c) = (r.expect("reference reads"), c.expect("current reads"));
    println!(
        "read {} + {} rows x {} columns in {:.3} s",
        r.height(),
        c.height(),
        r.width(),
        started.elapsed().as_secs_f64()
    );
}
