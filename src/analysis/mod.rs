//! The analysis core: what the offline doors (`driftd analyze` / `check` / `baseline`)
//! run, and what every window the daemon closes reuses: datasets read with polars (`dataset.rs`), reference profiles
//! (`profile.rs`), which columns to compare (`plan.rs`), the analysis in either mode
//! (`analyze.rs`), and the report (`report.rs`, and as a page: `html.rs`).

pub mod analyze;
pub mod calibration;
mod csv_check;
pub mod dataset;
pub mod html;
mod numbers;
mod parquet_check;
pub mod plan;
pub mod profile;
pub mod report;
pub mod thresholds;
