//! A Parquet file's footer, checked before polars reads it. polars-parquet 0.55 decodes
//! the footer's Thrift by hand and sizes each list it keeps with `Vec::with_capacity` from
//! the count the list declares, unchecked: a corrupt footer declaring 2^31 row groups
//! makes it ask for 81 GB or more, and the failed allocation aborts the process (found by
//! fuzzing: `fuzz/`, the `dataset` target). The walk here follows polars' decoder field by
//! field (`polars-parquet/src/parquet/handwritten_thrift/file_metadata_thrift.rs`: which
//! field ids it reads as what, whatever type the bytes declare) and refuses a list it
//! would size beyond the bytes left, each element taking at least one. Anything else the
//! walk cannot follow it leaves to polars, which refuses it with its own error. The page
//! headers are walked too (`pages_problem`): a page's counts are taken as `usize`.

use std::io::{Read as _, Seek, SeekFrom};
use std::path::Path;

/// Largest footer read for the check (polars reads the footer whole too).
const MAX_FOOTER: u64 = 1 << 30;
/// polars' depth limit for skipping fields it does not read.
const SKIP_DEPTH: u8 = 64;

/// What is wrong with the file's footer, if anything polars would choke on.
pub fn footer_problem(path: &Path) -> std::io::Result<Option<String>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len < 12 {
        return Ok(None);
    }
    let mut tail = [0u8; 8];
    f.seek(SeekFrom::End(-8))?;
    f.read_exact(&mut tail)?;
    let footer_len = u64::from(u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")));
    if &tail[4..] != b"PAR1" || footer_len > len - 8 || footer_len > MAX_FOOTER {
        // polars refuses these itself, before decoding anything
        return Ok(None);
    }
    let mut footer = vec![0u8; footer_len as usize];
    f.seek(SeekFrom::End(-8 - footer_len as i64))?;
    f.read_exact(&mut footer)?;
    let mut walk = Walk { bytes: &footer, at: 0, chunks: Vec::new() };
    Ok(match walk.structure(Kind::FileMetaData) {
        Err(Stop::Refuse(why)) => Some(format!("its footer is corrupt: {why}")),
        Err(Stop::Unreadable) => None,
        Ok(()) => pages_problem(&f, len - 8 - footer_len, &walk.chunks),
    })
}

/// Page headers read past this many bytes are left to polars (statistics can make a
/// header long; the counts come first).
const MAX_PAGE_HEADER: usize = 1 << 16;
/// Pages looked at per file, at most.
const MAX_PAGES: usize = 1 << 20;

/// The pages of each column chunk (`(dictionary_page_offset, data_page_offset,
/// total_compressed_size)`, before `data_end`): polars-parquet 0.55 takes a page's
/// `num_values` (an i32) as a `usize` and reserves a validity bitmap of that many bits,
/// so a negative count asks for 2^61 bytes and the failed allocation aborts the process
/// (found by fuzzing: the `dataset` target). A page header whose counts are negative is
/// refused; anything the walk cannot follow is left to polars.
fn pages_problem(f: &std::fs::File, data_end: u64, chunks: &[(i64, i64, i64)]) -> Option<String> {
    use std::os::unix::fs::FileExt as _;
    let mut pages = 0;
    let mut buf = vec![0u8; MAX_PAGE_HEADER];
    for &(dictionary, data, size) in chunks {
        let start = if (0..data).contains(&dictionary) { dictionary } else { data };
        let (Ok(start), Ok(size)) = (u64::try_from(start), u64::try_from(size)) else { continue };
        let end = start.saturating_add(size).min(data_end);
        let mut at = start;
        while at < end && pages < MAX_PAGES {
            pages += 1;
            let want = ((end - at) as usize).min(MAX_PAGE_HEADER);
            let Ok(n) = f.read_at(&mut buf[..want], at) else { return None };
            let mut walk = Walk { bytes: &buf[..n], at: 0, chunks: Vec::new() };
            match walk.page_header() {
                Ok(Some(compressed)) => at = at.saturating_add(walk.at as u64).saturating_add(compressed),
                Ok(None) => break,
                Err(why) => return Some(format!("a page at byte {at} is corrupt: {why}")),
            }
        }
    }
    None
}

/// The structures polars decodes field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    FileMetaData,
    SchemaElement,
    RowGroup,
    ColumnChunk,
    ColumnMetaData,
    Statistics,
    KeyValue,
    SortingColumn,
    ColumnOrder,
    LogicalType,
    Decimal,
    TimeUnit,
    TimeType,
    IntType,
    /// A structure read with no field of its own (every field skipped).
    Empty,
}

/// How polars reads a field it knows.
#[derive(Debug, Clone, Copy)]
enum Read {
    /// `read_i32`, `read_i64`, `skip_vlq`.
    Varint,
    /// `read_string`, `skip_binary`: a length, then that many bytes.
    Bytes,
    /// Statistics' min and max: the same, the length cut to 32 bits.
    Bytes32,
    /// `read_i8`.
    Byte,
    /// The boolean in the field's header (no bytes).
    Flag,
    ListOfVarint,
    ListOfBytes,
    /// `read_list`: sized from the header, then each element a structure.
    List(Kind),
    Struct(Kind),
}

/// The field ids polars reads in each structure, and how (the rest it skips by the type
/// the bytes declare).
fn field(kind: Kind, id: i16) -> Option<Read> {
    use Kind as K;
    use Read as R;
    Some(match (kind, id) {
        (K::FileMetaData, 1 | 3) => R::Varint,
        (K::FileMetaData, 2) => R::List(K::SchemaElement),
        (K::FileMetaData, 4) => R::List(K::RowGroup),
        (K::FileMetaData, 5) => R::List(K::KeyValue),
        (K::FileMetaData, 6) => R::Bytes,
        (K::FileMetaData, 7) => R::List(K::ColumnOrder),
        (K::SchemaElement, 1..=3 | 5..=9) => R::Varint,
        (K::SchemaElement, 4) => R::Bytes,
        (K::SchemaElement, 10) => R::Struct(K::LogicalType),
        (K::RowGroup, 1) => R::List(K::ColumnChunk),
        (K::RowGroup, 2 | 3 | 5..=7) => R::Varint,
        (K::RowGroup, 4) => R::List(K::SortingColumn),
        (K::ColumnChunk, 1) => R::Bytes,
        (K::ColumnChunk, 2 | 4..=7) => R::Varint,
        (K::ColumnChunk, 3) => R::Struct(K::ColumnMetaData),
        (K::ColumnMetaData, 1 | 4..=7 | 9..=11 | 14 | 15) => R::Varint,
        (K::ColumnMetaData, 2) => R::ListOfVarint,
        (K::ColumnMetaData, 3) => R::ListOfBytes,
        (K::ColumnMetaData, 12) => R::Struct(K::Statistics),
        (K::Statistics, 1 | 2) => R::Bytes,
        (K::Statistics, 3 | 4) => R::Varint,
        (K::Statistics, 5 | 6) => R::Bytes32,
        (K::Statistics, 7 | 8) => R::Flag,
        (K::KeyValue, 1 | 2) => R::Bytes,
        (K::SortingColumn, 1) => R::Varint,
        (K::SortingColumn, 2 | 3) => R::Flag,
        (K::ColumnOrder, 1 | 2) => R::Struct(K::Empty),
        (K::LogicalType, 1..=4 | 6 | 11..=15) => R::Struct(K::Empty),
        (K::LogicalType, 5) => R::Struct(K::Decimal),
        (K::LogicalType, 7 | 8) => R::Struct(K::TimeType),
        (K::LogicalType, 10) => R::Struct(K::IntType),
        (K::Decimal, 1 | 2) => R::Varint,
        (K::TimeUnit, 1..=3) => R::Struct(K::Empty),
        (K::TimeType, 1) => R::Flag,
        (K::TimeType, 2) => R::Struct(K::TimeUnit),
        (K::IntType, 1) => R::Byte,
        (K::IntType, 2) => R::Flag,
        _ => return None,
    })
}

/// Why the walk stopped.
#[derive(Debug, PartialEq)]
enum Stop {
    /// polars would allocate what the file cannot hold.
    Refuse(String),
    /// polars would fail here with an error of its own (end of input, a bad type).
    Unreadable,
}

type Walked = Result<(), Stop>;

/// A cursor over the footer's bytes, reading them as polars does.
struct Walk<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Per column chunk read: (dictionary_page_offset, data_page_offset,
    /// total_compressed_size), -1 where absent.
    chunks: Vec<(i64, i64, i64)>,
}

/// A compact-protocol integer (zigzag).
fn zigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

impl Walk<'_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn byte(&mut self) -> Result<u8, Stop> {
        let b = *self.bytes.get(self.at).ok_or(Stop::Unreadable)?;
        self.at += 1;
        Ok(b)
    }

    fn vlq(&mut self) -> Result<u64, Stop> {
        let (mut v, mut shift) = (0u64, 0u32);
        loop {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).wrapping_shl(shift);
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    fn skip(&mut self, n: usize) -> Walked {
        if n > self.left() {
            return Err(Stop::Unreadable);
        }
        self.at += n;
        Ok(())
    }

    /// A list's header: (element type, element count as polars takes it).
    fn list_begin(&mut self) -> Result<(u8, i32), Stop> {
        let header = self.byte()?;
        let (count, elem) = (header >> 4, header & 0x0f);
        // a type code, or the bare 0 some writers give an empty list
        let known = (1..=12).contains(&elem) || (elem == 0 && count == 0);
        if !known {
            return Err(Stop::Unreadable);
        }
        let n = if count == 15 { self.vlq()? as i32 } else { i32::from(count) };
        Ok((elem, n))
    }

    /// A list's header whose count fits in the bytes left: every element takes at least
    /// one in the compact protocol (a boolean too), so a count past them is corrupt.
    /// polars sizes the lists it keeps from it (an allocation past memory aborts) and loops
    /// it for the ones it skips (booleans take no bytes there: 2^31 of them are seconds).
    fn sized_list(&mut self) -> Result<(u8, usize), Stop> {
        let (elem, n) = self.list_begin()?;
        let n = n.max(0) as usize;
        if n > self.left() {
            return Err(Stop::Refuse(format!("a list of {n} entries where {} bytes are left", self.left())));
        }
        Ok((elem, n))
    }

    /// A field's header after the field `last`: its id and type, `None` at the stop byte
    /// (`read_field_begin`: a delta from `last`, or a zigzag id of its own).
    fn field_begin(&mut self, last: i16) -> Result<Option<(i16, u8)>, Stop> {
        let header = self.byte()?;
        let (delta, ty) = (header >> 4, header & 0x0f);
        if ty == 0 {
            return Ok(None);
        }
        if ty > 12 {
            return Err(Stop::Unreadable);
        }
        let id = if delta != 0 {
            last.checked_add(i16::from(delta)).ok_or(Stop::Unreadable)?
        } else {
            let v = self.vlq()?;
            ((v >> 1) as i64 ^ -((v & 1) as i64)) as i16
        };
        Ok(Some((id, ty)))
    }

    fn structure(&mut self, kind: Kind) -> Walked {
        let mut last: i16 = 0;
        // a column chunk's pages: where they are and how long
        let mut chunk = (-1, -1, -1);
        while let Some((id, ty)) = self.field_begin(last)? {
            match (kind, id, field(kind, id)) {
                (Kind::ColumnMetaData, 7 | 9 | 11, Some(Read::Varint)) => {
                    let v = zigzag(self.vlq()?);
                    match id {
                        7 => chunk.2 = v,
                        9 => chunk.1 = v,
                        _ => chunk.0 = v,
                    }
                }
                (_, _, Some(read)) => self.read(read, ty)?,
                (_, _, None) => self.skip_value(ty, SKIP_DEPTH)?,
            }
            last = id;
        }
        if kind == Kind::ColumnMetaData && chunk.1 >= 0 && chunk.2 >= 0 {
            self.chunks.push(chunk);
        }
        Ok(())
    }

    /// A page header (`PageHeader`): its compressed size, once its counts are checked;
    /// `None` when it cannot be followed.
    fn page_header(&mut self) -> Result<Option<u64>, String> {
        let mut compressed = None;
        let mut last: i16 = 0;
        while let Ok(Some((id, ty))) = self.field_begin(last) {
            last = id;
            let read = match (id, ty) {
                (3, 5) => self.vlq().map(|v| compressed = Some(zigzag(v))),
                // data page (v1), dictionary page, data page v2: their counts come first
                (5 | 7 | 8, 12) => match self.page_counts(id) {
                    Err(Stop::Refuse(why)) => return Err(why),
                    other => other,
                },
                _ => self.skip_value(ty, SKIP_DEPTH),
            };
            if read.is_err() {
                return Ok(None);
            }
        }
        match compressed {
            Some(c) if c < 0 => Err(format!("a page of {c} bytes")),
            Some(c) => Ok(Some(c as u64)),
            None => Ok(None),
        }
    }

    /// The counts of a page header's own header (`num_values`, and for a v2 data page
    /// `num_nulls` and `num_rows`), refused when negative.
    fn page_counts(&mut self, page: i16) -> Walked {
        let mut last: i16 = 0;
        while let Some((id, ty)) = self.field_begin(last)? {
            last = id;
            let counted = id == 1 || (page == 8 && (id == 2 || id == 3));
            if counted && ty == 5 {
                let n = zigzag(self.vlq()?);
                if n < 0 {
                    let name = ["num_values", "num_nulls", "num_rows"][id as usize - 1];
                    return Err(Stop::Refuse(format!("{name} {n}")));
                }
            } else {
                self.skip_value(ty, SKIP_DEPTH)?;
            }
        }
        Ok(())
    }

    fn read(&mut self, read: Read, ty: u8) -> Walked {
        match read {
            Read::Varint => self.vlq().map(drop),
            Read::Bytes => {
                let n = self.vlq()?;
                self.skip(usize::try_from(n).unwrap_or(usize::MAX))
            }
            Read::Bytes32 => {
                let n = self.vlq()? as u32;
                self.skip(n as usize)
            }
            Read::Byte => self.skip(1),
            // polars panics on a field here that is not a boolean (an error to the caller)
            Read::Flag if ty == 1 || ty == 2 => Ok(()),
            Read::Flag => Err(Stop::Unreadable),
            Read::ListOfVarint => {
                let n = self.sized_list()?.1;
                (0..n).try_for_each(|_| self.vlq().map(drop))
            }
            Read::ListOfBytes => {
                let n = self.sized_list()?.1;
                (0..n).try_for_each(|_| self.read(Read::Bytes, 8))
            }
            Read::List(kind) => {
                let n = self.sized_list()?.1;
                (0..n).try_for_each(|_| self.structure(kind))
            }
            Read::Struct(kind) => self.structure(kind),
        }
    }

    /// A field polars does not read, skipped by its declared type (`skip_till_depth`).
    fn skip_value(&mut self, ty: u8, depth: u8) -> Walked {
        if depth == 0 {
            return Err(Stop::Unreadable);
        }
        match ty {
            1 | 2 => Ok(()),
            3 => self.skip(1),
            4..=6 => self.vlq().map(drop),
            7 => self.skip(8),
            8 => self.read(Read::Bytes, 8),
            12 => {
                let mut last: i16 = 0;
                while let Some((id, fty)) = self.field_begin(last)? {
                    last = id;
                    self.skip_value(fty, depth - 1)?;
                }
                Ok(())
            }
            9 => {
                let (elem, n) = self.sized_list()?;
                // the element type as a field type: booleans carry no bytes; sets, maps
                // and the empty list's 0 are refused
                let elem = match elem {
                    1 | 2 => 1,
                    0 | 10 | 11 => return if n > 0 { Err(Stop::Unreadable) } else { Ok(()) },
                    e => e,
                };
                (0..n).try_for_each(|_| self.skip_value(elem, depth - 1))
            }
            _ => Err(Stop::Unreadable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(bytes: &[u8]) -> Walked {
        Walk { bytes, at: 0, chunks: Vec::new() }.structure(Kind::FileMetaData)
    }

    /// Every footer of `tests/fixtures/parquet/` (pyarrow's, of many shapes) and the data
    /// fixtures' (polars'): walked to its end, and every page header after it, nothing
    /// refused.
    #[test]
    fn real_footers_are_walked_to_their_end() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let files: Vec<_> = ["parquet", "data"]
            .iter()
            .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect();
        assert!(files.len() >= 7, "{files:?}");
        for path in files {
            assert_eq!(footer_problem(&path).unwrap(), None, "{}", path.display());
            let bytes = std::fs::read(&path).unwrap();
            let len = u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize;
            let footer = &bytes[bytes.len() - 8 - len..bytes.len() - 8];
            let mut walk = Walk { bytes: footer, at: 0, chunks: Vec::new() };
            assert_eq!(walk.structure(Kind::FileMetaData), Ok(()), "{}", path.display());
            assert_eq!(walk.left(), 0, "{}: the walk ends where the footer does", path.display());
            // and footer_problem walked each column chunk's pages (refusing none)
            assert!(!walk.chunks.is_empty(), "{}: its column chunks found", path.display());
        }
    }

    #[test]
    fn a_list_polars_would_size_past_the_bytes_left_is_refused() {
        // field 4 (row groups), whatever type the header says (here binary, 8), read as a
        // list: of 15+ entries, 2^31 - 1
        let huge = [0x48, 0xf5, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00];
        let Err(Stop::Refuse(why)) = walk(&huge) else { panic!("{:?}", walk(&huge)) };
        assert!(why.contains("a list of 2147483647 entries where 1 bytes are left"), "{why}");
        // a row group's column chunks (row groups: a list of 1 struct)
        let nested = [0x49, 0x1c, 0x19, 0xfc, 0x80, 0x80, 0x01, 0x00, 0x00];
        assert!(matches!(walk(&nested), Err(Stop::Refuse(_))), "{:?}", walk(&nested));
        // a field polars skips, a list of 65,535 booleans in 1 byte: polars would loop it
        let skipped = [0xf9, 0xf1, 0xff, 0xff, 0x03, 0x00];
        assert!(matches!(walk(&skipped), Err(Stop::Refuse(_))), "{:?}", walk(&skipped));
        // a list of 2 schema elements that fits, then the end
        assert_eq!(walk(&[0x29, 0x2c, 0x00, 0x00, 0x00]), Ok(()));
    }
}
