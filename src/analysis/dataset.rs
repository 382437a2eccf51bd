//! Datasets read with polars (CSV, Parquet, JSON Lines, chosen by extension) and turned
//! into clean per-column samples: finite numbers, sorted, or category counts.

use std::fmt;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::stats::binning::value_counts_sorted;
use crate::stats::sort;

/// A category: the value itself, so that numbers sort as numbers and strings as strings
/// (the order Evidently's z-test takes its first key in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Key {
    Num(f64),
    Str(String),
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        use std::cmp::Ordering;
        Some(match (self, other) {
            (Key::Num(a), Key::Num(b)) => a.total_cmp(b),
            (Key::Str(a), Key::Str(b)) => a.cmp(b),
            (Key::Num(_), Key::Str(_)) => Ordering::Less,
            (Key::Str(_), Key::Num(_)) => Ordering::Greater,
        })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Num(x) => write!(f, "{x}"),
            Key::Str(s) => f.write_str(s),
        }
    }
}

/// One column's values after cleaning.
#[derive(Debug, Clone)]
pub enum Values {
    /// Finite values, sorted ascending. `integer` is true for an integer column without
    /// missing values (what pandas keeps as an integer dtype).
    Numeric { sorted: Vec<f64>, integer: bool },
    /// A window's numbers too many to keep: counts over the reference's fine bins.
    Binned(crate::stats::binned::BinnedSample),
    /// A window's numbers of a discrete feature, as (value, count) sorted by value.
    Counted { counts: Vec<(f64, u64)> },
    /// Category counts, sorted by key.
    Categorical { counts: Vec<(Key, u64)> },
    /// A dtype drift is not computed on (dates, times, nested values).
    Unsupported { dtype: String },
}

/// A column: its values, how many rows were missing (null, NaN, ±inf), and how many held
/// a value of the wrong type (text for a number: a window's count; 0 in a file, which
/// has one type per column).
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub rows: usize,
    pub missing: usize,
    pub invalid: usize,
    pub values: Values,
}

/// `part` of `whole`, 0 when there is none.
pub fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl Column {
    pub fn missing_share(&self) -> f64 {
        share(self.missing, self.rows)
    }

    pub fn invalid_share(&self) -> f64 {
        share(self.invalid, self.rows)
    }

    /// Number of distinct non-missing values.
    pub fn n_unique(&self) -> usize {
        match &self.values {
            Values::Numeric { sorted, .. } => crate::stats::binning::n_unique_sorted(sorted),
            Values::Counted { counts } => counts.len(),
            Values::Binned(b) => b.counts.iter().filter(|c| **c > 0).count(),
            Values::Categorical { counts } => counts.len(),
            Values::Unsupported { .. } => 0,
        }
    }

    /// The column as category counts (numbers become numeric keys).
    pub fn to_categorical(&self) -> Option<Vec<(Key, u64)>> {
        match &self.values {
            Values::Numeric { sorted, .. } => {
                Some(value_counts_sorted(sorted).into_iter().map(|(v, c)| (Key::Num(v), c)).collect())
            }
            Values::Counted { counts } => Some(counts.iter().map(|(v, c)| (Key::Num(*v), *c)).collect()),
            Values::Categorical { counts } => Some(counts.clone()),
            Values::Binned(_) | Values::Unsupported { .. } => None,
        }
    }

    /// True for numbers in any form.
    pub fn is_numeric(&self) -> bool {
        matches!(self.values, Values::Numeric { .. } | Values::Binned(_) | Values::Counted { .. })
    }
}

/// A dataset as driftd reads it: where it came from, its row count, its columns in file
/// order.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub path: PathBuf,
    pub rows: usize,
    pub columns: Vec<Column>,
}

impl Dataset {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Reads a dataset and cleans the columns named by `wanted` (all when `None`).
    pub fn load(path: &Path, wanted: Option<&[String]>) -> Result<Dataset, InputError> {
        let started = std::time::Instant::now();
        let df = read_frame(path)?;
        let read = started.elapsed();
        let ds = Dataset::from_frame(path, &df, wanted)?;
        tracing::debug!(
            path = %path.display(),
            read_ms = read.as_millis() as u64,
            clean_ms = (started.elapsed() - read).as_millis() as u64,
            "dataset loaded"
        );
        Ok(ds)
    }

    pub fn from_frame(path: &Path, df: &DataFrame, wanted: Option<&[String]>) -> Result<Dataset, InputError> {
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .filter(|n| wanted.is_none_or(|w| w.iter().any(|x| x == n)))
            .collect();
        let columns = names
            .par_iter()
            .map(|name| {
                let col = df.column(name).map_err(|e| InputError::file(path, e.to_string()))?;
                clean_column(col.as_materialized_series())
                    .map_err(|e| InputError::column(path, name, format!("cannot read values: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Dataset { path: path.to_path_buf(), rows: df.height(), columns })
    }
}

/// Values pandas reads as missing by default; driftd reads them as missing too, so that
/// the same CSV gives the same numbers in both.
pub const CSV_NULL_VALUES: &[&str] = &[
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// The file formats driftd reads, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
    JsonLines,
}

impl Format {
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "tsv" | "txt" => Some(Format::Csv),
            "parquet" | "pq" => Some(Format::Parquet),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// Reads a file into a polars DataFrame, or says what is wrong with it.
pub fn read_frame(path: &Path) -> Result<DataFrame, InputError> {
    let format = Format::of(path).ok_or_else(|| {
        InputError::file(path, "unknown file extension (expected .csv, .tsv, .parquet, .jsonl or .ndjson)")
    })?;
    let meta = std::fs::metadata(path).map_err(|e| InputError::file(path, io_reason(&e)))?;
    if meta.is_dir() {
        return Err(InputError::file(path, "is a directory, not a file"));
    }
    if meta.len() == 0 {
        return Err(InputError::file(path, "file is empty"));
    }
    let how = match format {
        Format::Csv => Read::Csv(check_csv(path)?),
        Format::Parquet => {
            // polars allocates what a corrupt footer declares (parquet_check.rs)
            if let Some(why) =
                super::parquet_check::footer_problem(path).map_err(|e| InputError::file(path, io_reason(&e)))?
            {
                return Err(InputError::file(path, format!("cannot parse the file: {why}")));
            }
            Read::Parquet
        }
        Format::JsonLines => Read::JsonLines,
    };
    // polars may panic on some malformed inputs; a panic must not escape as a crash.
    let result = std::panic::catch_unwind(|| read_frame_unchecked(path, how));
    let df = match result {
        Ok(r) => r.map_err(|e| InputError::file(path, polars_reason(&e)))?,
        Err(panic) => {
            // polars' own words, e.g. a column type this build does not read
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "malformed content".to_string());
            return Err(InputError::file(path, format!("cannot parse the file: polars failed on it ({what})")));
        }
    };
    if df.width() == 0 {
        return Err(InputError::file(path, "file has no columns"));
    }
    if df.height() == 0 {
        return Err(InputError::file(path, "file has a header but no rows"));
    }
    Ok(df)
}

/// Checks a CSV file polars is about to read (polars reads out of bounds on a file that
/// ends in an open quote: csv_check.rs) and says how to read it.
fn check_csv(path: &Path) -> Result<CsvRead, InputError> {
    let sep = csv_separator(path);
    let checked = super::csv_check::check(path, sep, WORDS_HEAD).map_err(|e| InputError::file(path, io_reason(&e)))?;
    if let Some(line) = checked.open_quote {
        return Err(InputError::file(path, format!("cannot parse the file: a quote on line {line} is never closed")));
    }
    Ok(CsvRead { sep, words_everywhere: words_in(&checked.head, sep) })
}

/// A file checked by `read_frame`, and how to read it.
#[derive(Debug, Clone, Copy)]
enum Read {
    Csv(CsvRead),
    Parquet,
    JsonLines,
}

/// How a CSV file is read: its separator, and whether pandas' missing-value words are
/// given for every column.
#[derive(Debug, Clone, Copy)]
struct CsvRead {
    sep: u8,
    words_everywhere: bool,
}

/// The bytes at a CSV file's start looked at for missing-value words.
const WORDS_HEAD: usize = 64 * 1024;

/// Reads a file checked by `read_frame`.
fn read_frame_unchecked(path: &Path, how: Read) -> PolarsResult<DataFrame> {
    match how {
        Read::Csv(CsvRead { sep, words_everywhere: everywhere }) => {
            // pandas' missing-value words: polars compares every field with each of them
            // (a third of its reading time on numerical files), so they are given for
            // every column only when the file's first rows hold one (a file that marks
            // missing values with a word, R's `NA` say, marks them early), else only for
            // the text columns found to hold one; an empty field is missing either way
            let read = |infer: Option<usize>, nulls: Option<Arc<Vec<usize>>>| {
                let mut parse = CsvParseOptions::default().with_separator(sep);
                if everywhere || nulls.is_some() {
                    parse = parse.with_null_values(Some(NullValues::AllColumns(
                        CSV_NULL_VALUES.iter().map(|s| (*s).into()).collect(),
                    )));
                }
                CsvReadOptions::default()
                    .with_has_header(true)
                    .with_infer_schema_length(infer)
                    .with_projection(nulls)
                    .with_parse_options(parse)
                    .try_into_reader_with_file_path(Some(path.to_path_buf()))?
                    .finish()
            };
            // A sample of rows decides the types; a later row that does not fit (an
            // integer column with a decimal far down) makes us infer from every row.
            let read_all = |nulls: Option<Arc<Vec<usize>>>| match read(Some(10_000), nulls.clone()) {
                Err(PolarsError::ComputeError(_)) | Err(PolarsError::SchemaMismatch(_)) => read(None, nulls),
                other => other,
            };
            let mut df = read_all(None)?;
            if everywhere {
                return Ok(df);
            }
            // a column that holds a missing-value word is text to polars: read again with
            // the words as missing, it gets the type its other values give it
            let worded: Vec<usize> = df
                .columns()
                .iter()
                .enumerate()
                .filter(|(_, c)| c.str().is_ok_and(|s| s.iter().flatten().any(is_missing_word)))
                .map(|(i, _)| i)
                .collect();
            if worded.is_empty() {
                return Ok(df);
            }
            let again = read_all(Some(Arc::new(worded.clone())))?;
            for (i, c) in worded.into_iter().zip(again.columns()) {
                if c.name() != df.columns()[i].name() {
                    return Err(PolarsError::ComputeError("the columns read again do not line up".into()));
                }
                df.replace_column(i, c.clone())?;
            }
            Ok(df)
        }
        Read::Parquet => {
            let file = std::fs::File::open(path)?;
            ParquetReader::new(file).finish()
        }
        Read::JsonLines => {
            let file = std::fs::File::open(path)?;
            JsonReader::new(file).with_json_format(JsonFormat::JsonLines).infer_schema_len(None).finish()
        }
    }
}

/// Whether a CSV file's first bytes hold one of pandas' missing-value words as a field,
/// quoted or not (the header and a line cut short at the end included: this only picks how
/// the file is read, both ways give the same frame).
fn words_in(head: &[u8], sep: u8) -> bool {
    head.split(|b| *b == b'\n').flat_map(|line| line.split(|b| *b == sep)).any(|field| {
        let field = field.strip_suffix(b"\r").unwrap_or(field);
        let field = field.strip_prefix(b"\"").and_then(|f| f.strip_suffix(b"\"")).unwrap_or(field);
        std::str::from_utf8(field).is_ok_and(is_missing_word)
    })
}

/// One of pandas' missing-value words (`CSV_NULL_VALUES`) other than the empty field.
fn is_missing_word(field: &str) -> bool {
    (1..=8).contains(&field.len()) && CSV_NULL_VALUES.contains(&field)
}

/// A CSV file's separator: a tab in a `.tsv` file, else a comma.
fn csv_separator(path: &Path) -> u8 {
    let tsv = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    if tsv {
        b'\t'
    } else {
        b','
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn polars_reason(e: &PolarsError) -> String {
    let msg = e.to_string();
    let first = msg.lines().next().unwrap_or("").trim();
    format!("cannot parse the file: {first}")
}

/// Cleans one column: drops null, NaN and ±inf, sorts numbers, counts categories.
pub fn clean_column(s: &Series) -> PolarsResult<Column> {
    let name = s.name().to_string();
    let rows = s.len();
    let dtype = s.dtype().clone();
    let column = match dtype {
        DataType::Float32 | DataType::Float64 => {
            let (sorted, missing) = finite_sorted(s)?;
            Column { name, rows, missing, invalid: 0, values: Values::Numeric { sorted, integer: false } }
        }
        ref d if d.is_integer() => {
            let integer = s.null_count() == 0;
            let (sorted, missing) = finite_sorted(s)?;
            Column { name, rows, missing, invalid: 0, values: Values::Numeric { sorted, integer } }
        }
        DataType::Boolean => {
            let ca = s.bool()?;
            let (mut t, mut f) = (0u64, 0u64);
            for v in ca.downcast_iter().flat_map(|a| a.iter()).flatten() {
                if v {
                    t += 1
                } else {
                    f += 1
                }
            }
            let mut counts = Vec::new();
            if f > 0 {
                counts.push((Key::Str("false".into()), f));
            }
            if t > 0 {
                counts.push((Key::Str("true".into()), t));
            }
            Column { name, rows, missing: s.null_count(), invalid: 0, values: Values::Categorical { counts } }
        }
        DataType::String | DataType::Categorical(..) | DataType::Enum(..) => {
            let strings = s.cast(&DataType::String)?;
            let ca = strings.str()?;
            let mut map: PlHashMap<&str, u64> = PlHashMap::default();
            for v in ca.downcast_iter().flat_map(|a| a.iter()).flatten() {
                *map.entry(v).or_insert(0) += 1;
            }
            let mut counts: Vec<(Key, u64)> = map.into_iter().map(|(k, c)| (Key::Str(k.to_string()), c)).collect();
            counts.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            Column { name, rows, missing: strings.null_count(), invalid: 0, values: Values::Categorical { counts } }
        }
        DataType::Null => {
            Column { name, rows, missing: rows, invalid: 0, values: Values::Categorical { counts: Vec::new() } }
        }
        other => Column {
            name,
            rows,
            missing: s.null_count(),
            invalid: 0,
            values: Values::Unsupported { dtype: other.to_string() },
        },
    };
    Ok(column)
}

/// Finite values of a numeric series, sorted, and how many were missing.
fn finite_sorted(s: &Series) -> PolarsResult<(Vec<f64>, usize)> {
    let f = s.cast(&DataType::Float64)?;
    let ca = f.f64()?;
    // sort keys made as the values are read (stats::sort)
    let mut keys = Vec::with_capacity(ca.len() - ca.null_count());
    for arr in ca.downcast_iter() {
        if arr.validity().is_none_or(|v| v.unset_bits() == 0) {
            keys.extend(arr.values().iter().filter(|x| x.is_finite()).map(|x| sort::key(*x)));
        } else {
            keys.extend(arr.iter().flatten().filter(|x| x.is_finite()).map(|x| sort::key(*x)));
        }
    }
    let missing = ca.len() - keys.len();
    Ok((sort::sorted_from_keys(keys), missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// polars given pandas' missing-value words for every column, as driftd read CSV files
    /// before: the oracle for reading them only where a text column holds one.
    fn with_words_everywhere(path: &Path) -> DataFrame {
        let read = |infer: Option<usize>| {
            let words = CSV_NULL_VALUES.iter().map(|s| (*s).into()).collect();
            let parse = CsvParseOptions::default()
                .with_separator(csv_separator(path))
                .with_null_values(Some(NullValues::AllColumns(words)));
            CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(infer)
                .with_parse_options(parse)
                .try_into_reader_with_file_path(Some(path.to_path_buf()))?
                .finish()
        };
        match read(Some(10_000)) {
            Err(PolarsError::ComputeError(_)) | Err(PolarsError::SchemaMismatch(_)) => read(None),
            other => other,
        }
        .expect("the oracle reads the file")
    }

    #[test]
    fn missing_words_read_where_they_are_as_polars_reads_them_everywhere() {
        let dir = std::env::temp_dir().join(format!("driftd-words-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // words past the first 64 KiB (read again by the columns that hold them) and past
        // the 10,000 rows types are inferred from
        let long_ints: String =
            (0..30_000).map(|i| if i == 29_990 { "NA\n".to_string() } else { format!("{i}\n") }).collect();
        let long_floats: String =
            (0..30_000).map(|i| if i == 29_000 { "n/a,a\n".to_string() } else { format!("{}.5,b\n", i % 7) }).collect();
        let late_text: String =
            (0..30_000)
                .map(|i| {
                    if i == 20_000 {
                        "1,None,true\n".to_string()
                    } else {
                        format!("{i},{},false\n", ["x", "y"][i % 2])
                    }
                })
                .collect();
        let files = [
            ("mixed.csv", "i,f,s,b,all\n1,1.5,x,true,NA\nNA,nan,NA,NA,NA\n3,-nan,None,false,NA\n,inf,y,,NA\n4,NaN,NaN,true,NA\n"),
            (
                "words.csv",
                "f,g,h\n#N/A N/A,1,a\n-1.#IND,NULL,null\n1.#QNAN,<NA>,N/A\n2.5,#NA,-NaN\n-1.#QNAN,#N/A,1.#IND\n0.25,3,nan\n",
            ),
            ("quoted.csv", "q,r\n\"NA\",\"1\"\n\"2\",\"x\"\n\"3\",\"NA\"\n"),
            ("plain.csv", "a,b\n1,2.5\n3,-4\n5,1e3\n"),
            ("tab.tsv", "a\tb\n1\tNA\nNA\tx\n2\tnull\n"),
            ("late_ints.csv", &format!("n\n{long_ints}")),
            ("late_floats.csv", &format!("v,c\n{long_floats}")),
            ("late_text.csv", &format!("n,t,b\n{late_text}")),
        ];
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            let ours = Dataset::load(&path, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            let oracle = Dataset::from_frame(&path, &with_words_everywhere(&path), None).unwrap();
            assert_eq!(format!("{:?}", ours.columns), format!("{:?}", oracle.columns), "{name}");
            assert_eq!(ours.rows, oracle.rows, "{name}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
