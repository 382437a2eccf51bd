//! What a decoded message leaves for the windows: its model and time ([`Header`]), its
//! feature values, borrowed-free in buffers reused from message to message (no allocation
//! per event), and its version.

use std::borrow::Cow;

use super::error::DecodeError;
use super::skeleton::Layouts;

/// What a message says besides its features.
pub struct Header<'a> {
    pub model: Cow<'a, str>,
    pub ts_ms: Option<i64>,
}

/// One feature value as the message carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Num(f64),
    Str(Cow<'a, str>),
    Bool(bool),
    Null,
}

/// A message's feature values, decoded once into buffers reused from message to message:
/// names and text values are copied into two strings, so no allocation happens per event
/// once the buffers have grown.
#[derive(Debug, Default)]
pub struct Scratch {
    names: String,
    text: String,
    entries: Vec<Entry>,
    /// The message's `model_version` as text; `has_version` says whether it had one.
    version: String,
    has_version: bool,
    /// The skeleton (`skeleton.rs`) whose feature names the entries have, in its order;
    /// 0: none known.
    pub(super) layout: u64,
    /// The layouts the scanner tries first: the last ones it read.
    pub(super) layouts: Option<Box<Layouts>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    name: (u32, u32),
    value: Val,
}

/// A feature value in the scratch buffers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val {
    Num(f64),
    Text(u32, u32),
    Bool(bool),
    Null,
}

impl Scratch {
    pub const fn new() -> Scratch {
        Scratch {
            names: String::new(),
            text: String::new(),
            entries: Vec::new(),
            version: String::new(),
            has_version: false,
            layout: 0,
            layouts: None,
        }
    }

    pub(in crate::pipeline) fn clear(&mut self) {
        self.names.clear();
        self.text.clear();
        self.entries.clear();
        self.version.clear();
        self.has_version = false;
        self.layout = 0;
    }

    /// Which skeleton's feature names, in its order, the entries have (0: unknown): the
    /// same nonzero value twice means the same names at the same places.
    pub fn layout(&self) -> u64 {
        self.layout
    }

    /// The message's model version, compared as text (`7` and `"7"` are one version).
    pub fn version(&self) -> Option<&str> {
        self.has_version.then_some(self.version.as_str())
    }

    /// Takes a version as the message carries it: text or a number; null is none.
    pub(in crate::pipeline) fn set_version(&mut self, v: Scalar<'_>) -> Result<(), DecodeError> {
        use std::fmt::Write as _;
        match v {
            Scalar::Null => return Ok(()),
            Scalar::Str(s) => self.version.push_str(&s),
            // whole numbers print without a fraction: 7 and 7.0 are version "7"
            Scalar::Num(x) if x.fract() == 0.0 && x.abs() < 1e15 => {
                let _ = write!(self.version, "{}", x as i64);
            }
            Scalar::Num(x) if x.is_finite() => {
                let _ = write!(self.version, "{x}");
            }
            Scalar::Num(_) | Scalar::Bool(_) => return Err(DecodeError::WrongType),
        }
        self.has_version = true;
        Ok(())
    }

    /// Every feature name of a message at once, for `push_at` (names first, then values).
    pub(in crate::pipeline) fn set_names(&mut self, names: &str) {
        self.names.clear();
        self.names.push_str(names);
    }

    /// One name for `push_at`, added before any value: where it is.
    pub(in crate::pipeline) fn add_name(&mut self, name: &str) -> (u32, u32) {
        let n0 = self.names.len() as u32;
        self.names.push_str(name);
        (n0, self.names.len() as u32)
    }

    /// The name at a place `add_name` gave.
    pub(in crate::pipeline) fn name(&self, at: (u32, u32)) -> &str {
        &self.names[at.0 as usize..at.1 as usize]
    }

    /// Values whose names (added by `add_name`) come in the same order every time share
    /// this layout (`skeleton::names_layout`).
    pub(in crate::pipeline) fn set_layout(&mut self, layout: u64) {
        self.layout = layout;
    }

    /// The values dropped, the names, version and layout kept: the next row of a batch.
    pub(in crate::pipeline) fn clear_values(&mut self) {
        self.text.clear();
        self.entries.clear();
    }

    #[inline]
    pub(in crate::pipeline) fn push(&mut self, name: &str, value: Scalar<'_>) {
        let n0 = self.names.len() as u32;
        self.names.push_str(name);
        self.push_at((n0, self.names.len() as u32), value);
    }

    /// A number whose name is already in the names, at `name` (the common case, inline).
    #[inline(always)]
    pub(in crate::pipeline) fn push_num_at(&mut self, name: (u32, u32), x: f64) {
        self.entries.push(Entry { name, value: Val::Num(x) });
    }

    /// A value whose name is already in the names, at `name`.
    #[inline]
    pub(in crate::pipeline) fn push_at(&mut self, name: (u32, u32), value: Scalar<'_>) {
        let value = match value {
            Scalar::Num(x) => Val::Num(x),
            Scalar::Bool(b) => Val::Bool(b),
            Scalar::Null => Val::Null,
            Scalar::Str(s) => {
                let t0 = self.text.len() as u32;
                self.text.push_str(&s);
                Val::Text(t0, self.text.len() as u32)
            }
        };
        self.entries.push(Entry { name, value });
    }

    /// The (name, value) pairs of the last decoded message, the prediction last.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Val)> + '_ {
        self.entries.iter().map(|e| (&self.names[e.name.0 as usize..e.name.1 as usize], e.value))
    }

    /// The value of the `i`th pair.
    #[inline]
    pub fn value(&self, i: u32) -> Val {
        self.entries[i as usize].value
    }

    /// The text of a `Val::Text`.
    pub fn text(&self, v: Val) -> &str {
        match v {
            Val::Text(a, b) => &self.text[a as usize..b as usize],
            _ => "",
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
