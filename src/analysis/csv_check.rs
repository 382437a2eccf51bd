//! A CSV file's quoting, checked before polars parses it. polars-io 0.55.2's parser reads
//! out of bounds (`parse_lines`: `field.get_unchecked(1..field.len() - 1)` on a field that
//! is one `"`) when a piece of the file it parses ends right after an opening quote
//! (`1,2,"`, and files whose quotes make its chunking end a piece so): found by fuzzing
//! (`fuzz/`, the `dataset` target), an out-of-bounds read that debug builds catch and
//! release builds do not. Both ways found leave a quote unmatched, which is malformed CSV
//! whatever the parser: driftd refuses a file whose last quoted field never closes (by
//! RFC 4180's rule), or whose quotes are odd in number (a stray `"` in a field, which
//! polars would take as the start of a field running to the end), naming the line, and
//! polars never sees it.

use std::io::Read;
use std::path::Path;

/// What one pass over a CSV file found: the line (1-based) a quoted field that never closes
/// opened on, and the file's first `head` bytes (what else the reader looks at is there).
#[derive(Debug)]
pub struct Checked {
    pub open_quote: Option<u64>,
    pub head: Vec<u8>,
}

/// Reads the file (fields separated by `sep`) once: where it ends inside a quoted field,
/// and its first `head` bytes.
pub fn check(path: &Path, sep: u8, head: usize) -> std::io::Result<Checked> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut scan = Scan::new(sep);
    let mut kept = Vec::with_capacity(head);
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(Checked { open_quote: scan.open_since(), head: kept });
        }
        let take = n.min(head - kept.len());
        kept.extend_from_slice(&buf[..take]);
        scan.feed(&buf[..n]);
    }
}

/// RFC 4180's quoting: a quote opens a field only at its start (after a separator or a
/// line break, or at the file's start); inside, `""` is a quote and `"` closes it.
/// Quotes elsewhere are text, as polars reads them.
#[derive(Debug)]
struct Scan {
    sep: u8,
    line: u64,
    /// The next byte starts a field.
    at_field_start: bool,
    /// Inside a quoted field opened on this line.
    open: Option<u64>,
    /// Inside a quoted field, the last byte was a quote: it closed the field, unless the
    /// next byte is a quote too.
    quote_pending: bool,
    /// Quotes seen, and the line of the last.
    quotes: u64,
    last_quote_line: u64,
}

impl Scan {
    fn new(sep: u8) -> Scan {
        Scan { sep, line: 1, at_field_start: true, open: None, quote_pending: false, quotes: 0, last_quote_line: 0 }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            if !self.quote_pending {
                // only a quote changes the quoting: skip to the next one (memchr's pace,
                // the file is read once more than polars reads it)
                let next = memchr::memchr(b'"', &bytes[i..]).map_or(bytes.len(), |p| i + p);
                self.skip(&bytes[i..next]);
                i = next;
                if i == bytes.len() {
                    break;
                }
            }
            self.step(bytes[i]);
            i += 1;
        }
    }

    /// Bytes holding no quote: lines counted, and whether the next byte starts a field.
    fn skip(&mut self, seg: &[u8]) {
        self.line += memchr::memchr_iter(b'\n', seg).count() as u64;
        if self.open.is_none() {
            // as `outside` leaves it after these bytes: `\r` changes nothing
            if let Some(&b) = seg.iter().rev().find(|b| **b != b'\r') {
                self.at_field_start = b == b'\n' || b == self.sep;
            }
        }
    }

    /// One byte, as RFC 4180 reads it.
    fn step(&mut self, b: u8) {
        if b == b'"' {
            self.quotes += 1;
            self.last_quote_line = self.line;
        }
        if self.open.is_none() {
            return self.outside(b);
        }
        if self.quote_pending {
            self.quote_pending = false;
            if b != b'"' {
                // the quote closed the field; this byte is after it
                self.open = None;
                return self.outside(b);
            }
        } else if b == b'"' {
            self.quote_pending = true;
        }
        if b == b'\n' {
            self.line += 1;
        }
    }

    fn outside(&mut self, b: u8) {
        match b {
            b'"' if self.at_field_start => {
                self.open = Some(self.line);
                self.at_field_start = false;
            }
            b'\n' => {
                self.line += 1;
                self.at_field_start = true;
            }
            b'\r' => {}
            b if b == self.sep => self.at_field_start = true,
            _ => self.at_field_start = false,
        }
    }

    fn open_since(&self) -> Option<u64> {
        // a quote as the last byte closes its field
        let open = self.open.filter(|_| !self.quote_pending);
        open.or_else(|| (self.quotes % 2 == 1).then_some(self.last_quote_line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(text: &str) -> Option<u64> {
        let mut s = Scan::new(b',');
        // fed in pieces of every size: the state carries across reads
        for piece in text.as_bytes().chunks(3) {
            s.feed(piece);
        }
        s.open_since()
    }

    /// Skipping to the next quote reads every file as stepping byte by byte does.
    #[test]
    fn the_skip_to_the_next_quote_reads_as_byte_by_byte() {
        let mut rng = crate::rand::XorShift64::new(11);
        let alphabet = b"\",;\n\ra1";
        for _ in 0..3000 {
            let len = (rng.next_u64() % 40) as usize;
            let text: Vec<u8> = (0..len).map(|_| alphabet[(rng.next_u64() % 7) as usize]).collect();
            let mut bytewise = Scan::new(b',');
            text.iter().for_each(|b| bytewise.step(*b));
            let mut skipping = Scan::new(b',');
            let piece = 1 + (rng.next_u64() % 8) as usize;
            text.chunks(piece).for_each(|c| skipping.feed(c));
            assert_eq!(format!("{skipping:?}"), format!("{bytewise:?}"), "{:?}", String::from_utf8_lossy(&text));
        }
    }

    #[test]
    fn an_unclosed_quoted_field_is_found_where_it_opens() {
        assert_eq!(open("x,n,c\n1,2,\""), Some(2));
        assert_eq!(open("x,n,c\n1,2,\"a\nb,c\n"), Some(2));
        assert_eq!(open("x,n,c\n1,\"a\"\"b\n"), Some(2), "an escaped quote does not close it");
        assert_eq!(open("x\n\"a\nb\"\n\"c"), Some(4));
    }

    #[test]
    fn well_quoted_files_and_quotes_inside_fields_pass() {
        assert_eq!(open("x,n,c\n1,2,\"a,b\"\n"), None);
        assert_eq!(open("x,n,c\n1,2,\"a\"\"b\"\n3,4,c"), None);
        assert_eq!(open("x,n,c\n1,2,\"\""), None);
        assert_eq!(open("size\n5\"\n6\"\n"), None, "a quote after the field's start is text");
        assert_eq!(open("size\n5\"\n7\n"), Some(2), "but an odd one out is refused");
        assert_eq!(open("x\r\n\"a\r\nb\"\r\n"), None);
        assert_eq!(open("x,y\na;\"b\"\n"), None, "after another separator than the file's, a quote is text");
        assert_eq!(open(""), None);
    }

    /// The head kept is the file's first bytes, across reads, and the whole of a shorter
    /// file; the quote found is the same as a scan of the whole text.
    #[test]
    fn one_pass_keeps_the_head_and_finds_the_quote() {
        let dir = std::env::temp_dir().join(format!("driftd-csv-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("long.csv");
        let mut text: String = (0..20_000).map(|i| format!("{i},\"a{i}\"\n")).collect();
        text.push_str("1,\"never closed\n");
        std::fs::write(&path, &text).unwrap();
        let checked = check(&path, b',', 100_000).unwrap();
        assert_eq!(checked.head, text.as_bytes()[..100_000]);
        assert_eq!(checked.open_quote, open(&text));
        assert_eq!(checked.open_quote, Some(20_001));
        let whole = check(&path, b',', 1 << 30).unwrap();
        assert_eq!(whole.head, text.as_bytes());
        std::fs::remove_dir_all(&dir).ok();
    }
}
