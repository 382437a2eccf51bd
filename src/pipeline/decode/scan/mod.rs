//! The default layout read by hand: one pass over the bytes, no serde machinery, for the
//! messages it fully understands (an object of scalars with a flat `features` object, no
//! escapes in strings). Anything else (a nested value where a scalar may stand, an escape,
//! malformed JSON, a number out of range) gives `None`, and the caller decodes the message
//! with serde_json, which then classifies any error: the two paths accept the same
//! messages and give the same values.
//!
//! Numbers: integers that fit a u64 convert as serde_json converts them (`u64 as f64`,
//! negated); others are correctly rounded (Clinger's exact fast path for up to 15-16
//! significant digits and small exponents, else the standard library's parser).

use std::borrow::Cow;

use super::json::{RawHeader, TsDe};
use super::scratch::{Scalar, Scratch};
use super::skeleton::{same, Layouts, Recorder, Role, Skeleton};

/// The bytes that end a plain string: the quote, an escape, a control character.
const STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// 10^n for the digit runs `digits` folds in at once.
const POW10_U64: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// How many of the word's bytes, first byte lowest, are ASCII digits before the first
/// that is not (8 when all are). A byte is a digit when its high nibble is 3 and its low
/// nibble stays under 10 when 6 is added (the sum carries into the next byte only from
/// bytes 0xFA and up, which no `str` holds).
#[inline]
fn digit_run(word: u64) -> usize {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    let marks = (word & HIGH) | ((word.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4);
    ((marks ^ 0x3333_3333_3333_3333).trailing_zeros() / 8) as usize
}

/// The value of the first `n` (1 to 8) bytes of the word, ASCII digits, first byte lowest
/// and most significant.
#[inline]
fn leading_digits(word: u64, n: usize) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 0x000F_4240_0000_0064; // 100 + (1_000_000 << 32)
    const MUL2: u64 = 0x0000_2710_0000_0001; // 1 + (10_000 << 32)
                                             // digit values; a borrow from the bytes past the run only reaches later bytes, which
                                             // the shift drops, and the zeros it brings in are leading zeros
    let v = word.wrapping_sub(0x3030_3030_3030_3030) << (8 * (8 - n));
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    ((v & MASK).wrapping_mul(MUL1).wrapping_add(((v >> 16) & MASK).wrapping_mul(MUL2))) >> 32
}

/// A message's text and the place the scanner has read to (also open_inference's).
pub(in crate::pipeline::decode) struct Bytes<'a> {
    text: &'a str,
    b: &'a [u8],
    pub(in crate::pipeline::decode) i: usize,
}

impl<'a> Bytes<'a> {
    pub(in crate::pipeline::decode) fn new(text: &'a str) -> Bytes<'a> {
        Bytes { text, b: text.as_bytes(), i: 0 }
    }

    /// Bytes not read yet.
    pub(in crate::pipeline::decode) fn remaining(&self) -> usize {
        self.b.len() - self.i
    }

    /// Whether every byte is read.
    pub(in crate::pipeline::decode) fn at_end(&self) -> bool {
        self.i == self.b.len()
    }

    #[inline]
    pub(in crate::pipeline::decode) fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    pub(in crate::pipeline::decode) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    pub(in crate::pipeline::decode) fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// The bytes `word`, as they are (a skeleton's bytes between values).
    #[inline]
    fn same(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        same(self.b.get(self.i..end)?, word).then(|| self.i = end)
    }

    #[inline]
    pub(in crate::pipeline::decode) fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A string without escapes or control characters, borrowed.
    #[inline]
    pub(in crate::pipeline::decode) fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        while !STOP[*self.b.get(self.i)? as usize] {
            self.i += 1;
        }
        if self.b[self.i] != b'"' {
            return None;
        }
        let s = &self.text[start..self.i];
        self.i += 1;
        Some(s)
    }

    /// Digits, folded into `mantissa` while it holds fewer than 19 (`held` counts them);
    /// returns how many there were and how many did not fit. Eight bytes at a time where
    /// the message has them (the run of digits found and converted in one word, as
    /// fast_float's `parse_eight_digits_unrolled`), one at a time at the end of a message.
    #[inline]
    fn digits(&mut self, mantissa: &mut u64, held: &mut u32) -> (usize, usize) {
        let (start, mut lost) = (self.i, 0);
        while let Some(word) = self.b.get(self.i..self.i + 8) {
            let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            let n = digit_run(word);
            if n == 0 || *held + n as u32 > 19 {
                break;
            }
            *mantissa = *mantissa * POW10_U64[n] + leading_digits(word, n);
            *held += n as u32;
            self.i += n;
            if n < 8 {
                return (self.i - start, 0);
            }
        }
        while let Some(&c) = self.b.get(self.i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            if *held < 19 {
                *mantissa = *mantissa * 10 + u64::from(d);
                *held += 1;
            } else {
                lost += 1;
            }
            self.i += 1;
        }
        (self.i - start, lost)
    }

    /// A number as JSON's grammar has it.
    #[inline]
    pub(in crate::pipeline::decode) fn number(&mut self) -> Option<f64> {
        /// Powers of ten a double holds exactly.
        const POW10: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
            1e19, 1e20, 1e21, 1e22,
        ];
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let (mut mantissa, mut held) = (0u64, 0u32);
        let lost = match self.peek()? {
            b'0' => {
                self.i += 1;
                0
            }
            b'1'..=b'9' => self.digits(&mut mantissa, &mut held).1,
            _ => return None,
        };
        let (mut integer, mut fraction, mut exact) = (true, 0usize, lost == 0);
        if self.peek() == Some(b'.') {
            self.i += 1;
            let (n, lost) = self.digits(&mut mantissa, &mut held);
            if n == 0 {
                return None;
            }
            (integer, fraction, exact) = (false, n, exact && lost == 0);
        }
        let mut exp = 0i64;
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            let sign = match self.peek() {
                Some(b'-') => {
                    self.i += 1;
                    -1
                }
                Some(b'+') => {
                    self.i += 1;
                    1
                }
                _ => 1,
            };
            let (mut e, mut e_held) = (0u64, 0u32);
            let (n, lost) = self.digits(&mut e, &mut e_held);
            if n == 0 {
                return None;
            }
            integer = false;
            exact = exact && lost == 0 && e < 1000;
            exp = sign * e.min(1000) as i64;
        }
        if integer && exact {
            // as serde_json: the u64, converted
            let x = mantissa as f64;
            return Some(if negative { -x } else { x });
        }
        // Clinger's fast path: a mantissa a double holds exactly, scaled by an exact power
        // of ten, is one correctly rounded operation
        let scale = exp - fraction as i64;
        if exact && mantissa < (1u64 << 53) && (-22..=22).contains(&scale) {
            let m = mantissa as f64;
            let x = if scale < 0 { m / POW10[(-scale) as usize] } else { m * POW10[scale as usize] };
            return Some(if negative { -x } else { x });
        }
        let x: f64 = self.text[start..self.i].parse().ok()?;
        x.is_finite().then_some(x)
    }

    /// A number, string, boolean or null; `None` for anything else.
    #[inline]
    pub(in crate::pipeline::decode) fn scalar(&mut self) -> Option<Scalar<'a>> {
        Some(match self.peek()? {
            b'"' => Scalar::Str(Cow::Borrowed(self.string()?)),
            b't' => {
                self.literal(b"true")?;
                Scalar::Bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                Scalar::Bool(false)
            }
            b'n' => {
                self.literal(b"null")?;
                Scalar::Null
            }
            _ => Scalar::Num(self.number()?),
        })
    }

    /// `[` … `]` of comma-separated values, each read by `item`.
    pub(in crate::pipeline::decode) fn list(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        self.ws();
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            self.ws();
            item(self)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `{` … `}` of comma-separated members, each read by `member` after its key and `:`.
    pub(in crate::pipeline::decode) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            member(self, key)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// The top-level members driftd reads, as they come.
struct Fields<'a> {
    header: RawHeader<'a>,
    prediction: Option<Scalar<'a>>,
    version: Option<Scalar<'a>>,
    /// The roles read so far, a bit each: one given twice goes to the full decoder,
    /// which refuses it.
    seen: u8,
}

impl<'a> Fields<'a> {
    fn new() -> Fields<'a> {
        Fields { header: RawHeader { model: None, ts: None }, prediction: None, version: None, seen: 0 }
    }

    /// A top-level value of `role` (a feature's value is read where it is pushed).
    #[inline]
    fn take(&mut self, p: &mut Bytes<'a>, role: Role) -> Option<()> {
        let bit = match role {
            Role::Model => 1,
            Role::Version => 2,
            Role::Timestamp => 4,
            Role::Prediction => 16,
            Role::Other | Role::Feature(..) => 0,
        };
        if self.seen & bit != 0 {
            return None;
        }
        self.seen |= bit;
        match role {
            Role::Model => {
                self.header.model = match p.scalar()? {
                    Scalar::Str(s) => Some(s),
                    Scalar::Null => None,
                    _ => return None,
                }
            }
            Role::Version => self.version = Some(p.scalar()?),
            Role::Timestamp => {
                self.header.ts = Some(match p.scalar()? {
                    Scalar::Num(x) => TsDe::Ms(x),
                    Scalar::Str(s) => TsDe::Text(s),
                    Scalar::Null => TsDe::Null,
                    Scalar::Bool(_) => return None,
                })
            }
            Role::Prediction => self.prediction = Some(p.scalar()?),
            Role::Other | Role::Feature(..) => {
                p.scalar()?;
            }
        }
        Some(())
    }

    /// The `features` object met: true the first time.
    fn first_features(&mut self) -> bool {
        let first = self.seen & 8 == 0;
        self.seen |= 8;
        first
    }

    /// The message read to its end: the prediction and version into `scratch`.
    fn finish(self, p: &Bytes<'a>, scratch: &mut Scratch) -> Option<RawHeader<'a>> {
        if p.i != p.b.len() {
            return None;
        }
        if let Some(v) = self.prediction {
            scratch.push("prediction", v);
        }
        if let Some(v) = self.version {
            scratch.set_version(v).ok()?;
        }
        Some(self.header)
    }
}

/// A top-level key's role (`features` is read apart).
fn role_of(key: &str) -> Role {
    match key {
        "model" => Role::Model,
        "model_version" => Role::Version,
        "timestamp" => Role::Timestamp,
        "prediction" => Role::Prediction,
        _ => Role::Other,
    }
}

/// A feature's value: numbers, the common case, straight to the number parser.
#[inline]
fn feature_value<'a>(p: &mut Bytes<'a>) -> Option<Scalar<'a>> {
    match p.peek()? {
        b'-' | b'0'..=b'9' => Some(Scalar::Num(p.number()?)),
        _ => p.scalar(),
    }
}

/// The default layout's message, its features into `scratch`; `None` when the message
/// needs the full decoder (the caller then clears `scratch`). The layout of the last
/// message read is tried first (`skeleton.rs`); a message that does not fit it is read
/// member by member, and its layout remembered.
pub(super) fn scan<'a>(text: &'a str, scratch: &mut Scratch) -> Option<RawHeader<'a>> {
    let mut layouts = scratch.layouts.take().unwrap_or_default();
    let header =
        if layouts.resting() { scan_members(text, scratch, None) } else { scan_layouts(text, scratch, &mut layouts) };
    scratch.layouts = Some(layouts);
    header
}

/// Through the two layouts read last, else member by member, its layout recorded.
fn scan_layouts<'a>(text: &'a str, scratch: &mut Scratch, layouts: &mut Layouts) -> Option<RawHeader<'a>> {
    let mut tried = false;
    for k in 0..2 {
        if layouts.recent[k].id == 0 {
            continue;
        }
        if let Some(header) = scan_known(text, scratch, &layouts.recent[k]) {
            scratch.layout = layouts.fitted(k);
            return Some(header);
        }
        tried = true;
        scratch.clear();
    }
    let mut rec = layouts.record();
    let header = scan_members(text, scratch, Some(&mut rec));
    let sk = match header {
        Some(_) => rec.finish(text.as_bytes()),
        None => rec.abandon(),
    };
    scratch.layout = layouts.recorded(sk, header.is_some(), tried);
    header
}

/// A message of `sk`'s layout: its bytes between values compared, its values parsed.
fn scan_known<'a>(text: &'a str, scratch: &mut Scratch, sk: &Skeleton) -> Option<RawHeader<'a>> {
    let mut p = Bytes::new(text);
    let mut fields = Fields::new();
    scratch.set_names(&sk.names);
    let (pieces, tail) = sk.walk();
    for (before, role) in pieces {
        p.same(before)?;
        match role {
            Role::Feature(a, b) => match p.peek()? {
                b'-' | b'0'..=b'9' => scratch.push_num_at((a, b), p.number()?),
                _ => scratch.push_at((a, b), p.scalar()?),
            },
            role => fields.take(&mut p, role)?,
        }
    }
    p.same(tail)?;
    fields.finish(&p, scratch)
}

/// A message read member by member; its layout into `rec`, when given.
fn scan_members<'a>(text: &'a str, scratch: &mut Scratch, mut rec: Option<&mut Recorder>) -> Option<RawHeader<'a>> {
    let mut p = Bytes::new(text);
    let mut fields = Fields::new();
    p.ws();
    p.object(|p, key| {
        if key != "features" {
            let role = role_of(key);
            if let Some(r) = rec.as_deref_mut() {
                r.value(p.b, p.i, role);
            }
            fields.take(p, role)?;
        } else if !fields.first_features() {
            // `features` twice: the full decoder refuses it
            return None;
        } else if p.peek()? == b'n' {
            // between values: in the skeleton's bytes
            p.literal(b"null")?;
            return Some(());
        } else {
            return p.object(|p, name| {
                if let Some(r) = rec.as_deref_mut() {
                    let role = r.feature(name);
                    r.value(p.b, p.i, role);
                }
                scratch.push(name, feature_value(p)?);
                if let Some(r) = rec.as_deref_mut() {
                    r.ended(p.i);
                }
                Some(())
            });
        }
        if let Some(r) = rec.as_deref_mut() {
            r.ended(p.i);
        }
        Some(())
    })?;
    p.ws();
    fields.finish(&p, scratch)
}

#[cfg(test)]
mod tests;
