//! Errors at the input boundary: each names the file, column or flag at fault, on one line.

use std::fmt;
use std::path::{Path, PathBuf};

/// Bad input or usage: `driftd check` exits 2 with this line on stderr.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    /// A problem with a whole file.
    #[error("{path}: {reason}", path = .path.display())]
    File { path: PathBuf, reason: String },
    /// A problem with one column of a file.
    #[error("{path}: column '{column}': {reason}", path = .path.display())]
    Column { path: PathBuf, column: String, reason: String },
    /// A problem with a flag or config key.
    #[error("{flag}: {reason}")]
    Flag { flag: String, reason: String },
}

impl InputError {
    pub fn file(path: &Path, reason: impl fmt::Display) -> Self {
        InputError::File { path: path.to_path_buf(), reason: reason.to_string() }
    }

    pub fn column(path: &Path, column: &str, reason: impl fmt::Display) -> Self {
        InputError::Column { path: path.to_path_buf(), column: column.to_string(), reason: reason.to_string() }
    }

    pub fn flag(flag: &str, reason: impl fmt::Display) -> Self {
        InputError::Flag { flag: flag.to_string(), reason: reason.to_string() }
    }
}
