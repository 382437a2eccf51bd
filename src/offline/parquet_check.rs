//! A Parquet file's footer, checked before polars reads it. polars-parquet 0.55 sizes its
//! vectors from the counts the footer's Thrift encoding declares, unchecked: a corrupt
//! footer declaring a list of 2^33 entries makes it ask for 81 GB, and the allocation
//! failure aborts the process (found by fuzzing: `fuzz/`, the `dataset` target). The
//! footer is walked here first (Thrift's compact protocol, any structure): every list,
//! set, map and binary must fit in the bytes left, the nesting must stay shallow, and the
//! footer must fit in the file. A footer that passes can only declare what it holds.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Deepest nesting of structures and containers taken (the format's own is under 10).
const MAX_DEPTH: usize = 64;
/// Largest footer taken (polars' readers take up to this much too, in effect).
const MAX_FOOTER: u64 = 1 << 30;

/// What is wrong with the file's footer, if anything.
pub fn footer_problem(path: &Path) -> std::io::Result<Option<String>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len < 12 {
        return Ok(Some(format!("{len} bytes is too short for a Parquet file")));
    }
    let mut head = [0u8; 4];
    f.read_exact(&mut head)?;
    let mut tail = [0u8; 8];
    f.seek(SeekFrom::End(-8))?;
    f.read_exact(&mut tail)?;
    if &head != b"PAR1" || &tail[4..] != b"PAR1" {
        return Ok(Some("not a Parquet file (no PAR1 magic at its start and end)".into()));
    }
    let footer_len = u64::from(u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")));
    if footer_len > len - 12 || footer_len > MAX_FOOTER {
        return Ok(Some(format!("its footer claims {footer_len} bytes, more than the file holds")));
    }
    let mut footer = vec![0u8; footer_len as usize];
    f.seek(SeekFrom::End(-8 - footer_len as i64))?;
    f.read_exact(&mut footer)?;
    let mut walk = Walk { bytes: &footer, at: 0 };
    Ok(walk.structure(0).err().map(|e| format!("its footer is corrupt: {e}")))
}

/// A cursor over Thrift compact-protocol bytes that checks what it skips.
struct Walk<'a> {
    bytes: &'a [u8],
    at: usize,
}

type Checked = Result<(), String>;

impl Walk<'_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.at).ok_or("it ends inside a value")?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a variable-length integer runs past 10 bytes".into())
    }

    fn skip(&mut self, n: u64, what: &str) -> Checked {
        if n > self.left() as u64 {
            return Err(format!("a {what} of {n} bytes where {} are left", self.left()));
        }
        self.at += n as usize;
        Ok(())
    }

    /// A container's element count, which must fit in the bytes left (each element takes
    /// at least one).
    fn count(&mut self, n: u64, what: &str) -> Result<u64, String> {
        if n > self.left() as u64 {
            return Err(format!("a {what} of {n} entries where {} bytes are left", self.left()));
        }
        Ok(n)
    }

    fn structure(&mut self, depth: usize) -> Checked {
        if depth > MAX_DEPTH {
            return Err(format!("structures nested deeper than {MAX_DEPTH}"));
        }
        loop {
            let header = self.byte()?;
            let kind = header & 0x0f;
            if kind == 0 {
                return Ok(());
            }
            if header >> 4 == 0 {
                // a long-form field id follows
                self.varint()?;
            }
            self.value(kind, depth)?;
        }
    }

    fn value(&mut self, kind: u8, depth: usize) -> Checked {
        match kind {
            // booleans live in the type nibble of a field; one byte in a container
            1 | 2 => Ok(()),
            3 => self.skip(1, "byte"),
            4..=6 => self.varint().map(drop),
            7 => self.skip(8, "double"),
            8 => {
                let n = self.varint()?;
                self.skip(n, "binary value")
            }
            9 | 10 => {
                let header = self.byte()?;
                let n = match header >> 4 {
                    15 => self.varint()?,
                    short => u64::from(short),
                };
                let n = self.count(n, "list")?;
                self.elements(n, header & 0x0f, depth)
            }
            11 => {
                let n = self.varint()?;
                let n = self.count(n, "map")?;
                if n == 0 {
                    return Ok(());
                }
                let kinds = self.byte()?;
                for _ in 0..n {
                    self.element(kinds >> 4, depth)?;
                    self.element(kinds & 0x0f, depth)?;
                }
                Ok(())
            }
            12 => self.structure(depth + 1),
            other => Err(format!("unknown Thrift type {other}")),
        }
    }

    fn elements(&mut self, n: u64, kind: u8, depth: usize) -> Checked {
        (0..n).try_for_each(|_| self.element(kind, depth))
    }

    /// One element of a container: a boolean takes a byte there.
    fn element(&mut self, kind: u8, depth: usize) -> Checked {
        if depth + 1 > MAX_DEPTH {
            return Err(format!("containers nested deeper than {MAX_DEPTH}"));
        }
        match kind {
            1 | 2 => self.skip(1, "boolean"),
            k => self.value(k, depth + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(bytes: &[u8]) -> Checked {
        Walk { bytes, at: 0 }.structure(0)
    }

    #[test]
    fn a_real_footer_passes() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data/parquet_dict_cur.parquet");
        assert_eq!(footer_problem(&path).unwrap(), None);
    }

    #[test]
    fn declared_sizes_must_fit_in_what_is_left() {
        // field 1, a list (type 9) of 15+ i32 (type 5) declaring 2^33 entries
        let huge = [0x19, 0xf5, 0x80, 0x80, 0x80, 0x80, 0x20, 0x00];
        assert!(walk(&huge).unwrap_err().contains("a list of 8589934592 entries"), "{:?}", walk(&huge));
        // field 1, a binary (type 8) of 300 bytes with 2 left
        let long = [0x18, 0xac, 0x02, 0x61, 0x62];
        assert!(walk(&long).unwrap_err().contains("binary value of 300 bytes"));
        // a list of 2 i32, then the end
        assert_eq!(walk(&[0x19, 0x25, 0x02, 0x04, 0x00]), Ok(()));
        // structures nested past the limit
        let deep: Vec<u8> = std::iter::repeat_n(0x1c, 100).collect();
        assert!(walk(&deep).unwrap_err().contains("nested deeper"));
    }
}
