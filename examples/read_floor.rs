//! The floor for `analyze`: polars reading the two files, as `analyze` reads them (both
//! at once, same options), and nothing else.
//!
//! cargo run --release --example read_floor -- REFERENCE CURRENT

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [reference, current] = args.as_slice() else {
        eprintln!("usage: read_floor REFERENCE CURRENT");
        std::process::exit(2);
    };
    let started = Instant::now();
    let (r, c) = rayon::join(
        || driftd::offline::dataset::read_frame(reference),
        || driftd::offline::dataset::read_frame(current),
    );
    let (r, c) = (r.expect("reference reads"), c.expect("current reads"));
    println!(
        "read {} + {} rows x {} columns in {:.3} s",
        r.height(),
        c.height(),
        r.width(),
        started.elapsed().as_secs_f64()
    );
}
