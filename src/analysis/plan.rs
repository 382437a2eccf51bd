//! Which columns to compare, and as what kind: from the flags (`--columns`, `--exclude`,
//! `--numerical`, `--categorical`), the two datasets' columns and dtypes, or a profile.

use std::path::Path;

use super::dataset::{Column, Dataset, Values};
use super::profile::Profile;
use super::report::Skipped;
use crate::error::InputError;
use crate::stats::Kind;

/// Which columns to compare and how to read them.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these columns (all shared columns when `None`).
    pub columns: Option<Vec<String>>,
    pub exclude: Vec<String>,
    /// Force these columns numerical / categorical.
    pub numerical: Vec<String>,
    pub categorical: Vec<String>,
}

impl Selection {
    fn forced_kind(&self, name: &str) -> Option<Kind> {
        if self.numerical.iter().any(|n| n == name) {
            Some(Kind::Numerical)
        } else if self.categorical.iter().any(|n| n == name) {
            Some(Kind::Categorical)
        } else {
            None
        }
    }

    fn named(&self, name: &str) -> bool {
        self.columns.as_ref().is_some_and(|c| c.iter().any(|n| n == name)) || self.forced_kind(name).is_some()
    }

    /// Rejects contradictory flags before any file is read.
    pub fn validate(&self) -> Result<(), InputError> {
        if let Some(both) = self.numerical.iter().find(|n| self.categorical.contains(n)) {
            return Err(InputError::flag("--numerical/--categorical", format!("column '{both}' is named in both")));
        }
        Ok(())
    }

    /// The columns to compare, in order: those named, else the reference's then the
    /// current's; less the excluded ones. A forced kind must name one of them.
    fn names(&self, reference: &Dataset, current: &Dataset) -> Result<Vec<String>, InputError> {
        let mut names: Vec<String> = match &self.columns {
            Some(cols) => cols.clone(),
            None => {
                let mut n: Vec<String> = reference.columns.iter().map(|c| c.name.clone()).collect();
                for c in &current.columns {
                    if !n.contains(&c.name) {
                        n.push(c.name.clone());
                    }
                }
                n
            }
        };
        names.retain(|n| !self.exclude.contains(n));
        for forced in self.numerical.iter().chain(&self.categorical) {
            if !names.contains(forced) && !self.exclude.contains(forced) {
                return Err(InputError::flag(
                    "--numerical/--categorical",
                    format!("column '{forced}' is not among the compared columns"),
                ));
            }
        }
        Ok(names)
    }
}

/// The features to compare, with their kinds, in report order.
pub type Plan = Vec<(String, Kind)>;

/// A column's kind from its dtype, as Evidently's legacy data-drift table reads it: numbers
/// are numerical (a numerical column with few distinct values still gets a categorical
/// test through the default selection); text, booleans and categoricals are categorical.
pub fn infer_kind(values: &Values) -> Option<Kind> {
    match values {
        Values::Numeric { .. } | Values::Binned(_) | Values::Counted { .. } => Some(Kind::Numerical),
        Values::Categorical { .. } => Some(Kind::Categorical),
        Values::Unsupported { .. } => None,
    }
}

/// The plan for two datasets, and the columns left out with the reason.
pub fn plan_from_datasets(
    reference: &Dataset,
    current: &Dataset,
    sel: &Selection,
) -> Result<(Plan, Vec<Skipped>), InputError> {
    let mut plan = Vec::new();
    let mut skipped = Vec::new();
    for name in sel.names(reference, current)? {
        let (r, c) = column_pair(reference, current, &name)?;
        if let Some(dtype) = unsupported(r).or(unsupported(c)) {
            if sel.named(&name) {
                return Err(InputError::column(
                    &reference.path,
                    &name,
                    format!("has dtype {dtype}, which drift is not computed on"),
                ));
            }
            skipped.push(Skipped { name, reason: format!("dtype {dtype} is not analyzed") });
            continue;
        }
        let kind = kind_of(sel, &name, (r, reference), (c, current))?;
        plan.push((name, kind));
    }
    Ok((plan, skipped))
}

/// The column in both files, or which file lacks it.
fn column_pair<'a>(
    reference: &'a Dataset,
    current: &'a Dataset,
    name: &str,
) -> Result<(&'a Column, &'a Column), InputError> {
    match (reference.column(name), current.column(name)) {
        (Some(r), Some(c)) => Ok((r, c)),
        (None, Some(_)) => Err(InputError::column(
            &reference.path,
            name,
            format!("is missing here but present in {}", current.path.display()),
        )),
        (Some(_), None) => Err(InputError::column(
            &current.path,
            name,
            format!("is missing here but present in {}", reference.path.display()),
        )),
        (None, None) => Err(InputError::flag("--columns", format!("column '{name}' is in neither file"))),
    }
}

/// The kind a column is compared as: forced by a flag, else inferred (both files must
/// agree).
fn kind_of(
    sel: &Selection,
    name: &str,
    (r, reference): (&Column, &Dataset),
    (c, current): (&Column, &Dataset),
) -> Result<Kind, InputError> {
    let numeric = |c: &Column| c.is_numeric();
    match sel.forced_kind(name) {
        Some(Kind::Numerical) => {
            for (col, path) in [(r, &reference.path), (c, &current.path)] {
                if !numeric(col) {
                    return Err(InputError::column(
                        path,
                        name,
                        "cannot be numerical (--numerical): it holds text or booleans",
                    ));
                }
            }
            Ok(Kind::Numerical)
        }
        Some(Kind::Categorical) => Ok(Kind::Categorical),
        None if numeric(r) != numeric(c) => {
            let describe = |c: &Column| if numeric(c) { "numbers" } else { "text or booleans" };
            Err(InputError::column(
                &current.path,
                name,
                format!(
                    "kind differs between the files: {} here, {} in {}",
                    describe(c),
                    describe(r),
                    reference.path.display()
                ),
            ))
        }
        None => Ok(infer_kind(&r.values).expect("supported column")),
    }
}

/// The plan for a dataset against a profile: the profile's features, less the excluded.
pub fn plan_from_profile(
    profile: &Profile,
    path: &Path,
    current: &Dataset,
    sel: &Selection,
) -> Result<Plan, InputError> {
    if let Some(cols) = &sel.columns {
        if let Some(missing) = cols.iter().find(|c| profile.feature(c).is_none()) {
            return Err(InputError::column(path, missing, "is not in the profile"));
        }
    }
    let mut plan = Vec::new();
    for f in &profile.features {
        if sel.exclude.contains(&f.name) || sel.columns.as_ref().is_some_and(|c| !c.contains(&f.name)) {
            continue;
        }
        if let Some(k) = sel.forced_kind(&f.name).filter(|k| *k != f.kind) {
            let reason = format!(
                "the profile holds it as {}, not {} (rebuild the profile with the flag)",
                f.kind.as_str(),
                k.as_str()
            );
            return Err(InputError::column(path, &f.name, reason));
        }
        let c = current.column(&f.name).ok_or_else(|| {
            let reason = format!("is missing here but present in the profile {}", path.display());
            InputError::column(&current.path, &f.name, reason)
        })?;
        if let Some(dtype) = unsupported(c) {
            let reason = format!("has dtype {dtype}, which drift is not computed on");
            return Err(InputError::column(&current.path, &f.name, reason));
        }
        if f.kind == Kind::Numerical && !c.is_numeric() {
            let reason = "kind differs: text or booleans here, numbers in the profile";
            return Err(InputError::column(&current.path, &f.name, reason));
        }
        plan.push((f.name.clone(), f.kind));
    }
    Ok(plan)
}

/// Selection and kinds for one dataset on its own (what `driftd baseline` profiles).
pub fn plan_single(data: &Dataset, sel: &Selection) -> Result<(Plan, Vec<Skipped>), InputError> {
    let (plan, skipped) = plan_from_datasets(data, data, sel)?;
    for (name, _) in &plan {
        ensure_not_empty(data.column(name).expect("planned column is present"), &data.path)?;
    }
    if plan.is_empty() {
        return Err(InputError::flag("--columns", "no feature columns left to profile"));
    }
    Ok((plan, skipped))
}

fn unsupported(c: &Column) -> Option<&str> {
    match &c.values {
        Values::Unsupported { dtype } => Some(dtype),
        _ => None,
    }
}

/// A column with no value left after dropping the missing ones cannot be compared.
pub fn ensure_not_empty(col: &Column, path: &Path) -> Result<(), InputError> {
    let empty = match &col.values {
        Values::Numeric { sorted, .. } => sorted.is_empty(),
        Values::Binned(b) => b.n == 0,
        Values::Counted { counts } => counts.is_empty(),
        Values::Categorical { counts } => counts.is_empty(),
        Values::Unsupported { .. } => false,
    };
    if empty {
        Err(InputError::column(path, &col.name, "is empty after dropping missing values"))
    } else {
        Ok(())
    }
}
