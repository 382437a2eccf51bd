//! The floor for `analyze`: polars reading the two files, as `analyze` has them read
//! (both at once, same options), and nothing else; with `--checked`, also driftd's checks
//! of each file before polars reads it (the CSV's quoting, a Parquet footer).
//!
//! cargo run --release --example read_floor -- [--checked] REFERENCE CURRENT

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let mut args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let checked = args.first().is_some_and(|a| a.as_os_str() == "--checked");
    if checked {
        args.remove(0);
    }
    let [reference, current] = args.as_slice() else {
        eprintln!("usage: read_floor [--checked] REFERENCE CURRENT");
        std::process::exit(2);
    };
    let read = |path: &PathBuf| match checked {
        true => driftd::offline::dataset::read_frame(path).map_err(|e| e.to_string()),
        false => driftd::offline::dataset::polars_read(path).map_err(|e| e.to_string()),
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
