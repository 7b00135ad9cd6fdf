//! Source files, byte spans and the maps that tie a decoded snippet back to the file it came from.
//!
//! A [`Span`] is a byte range into one [`SourceFile`]; line and column numbers are computed only when
//! a diagnostic is rendered. Snippets taken out of YAML are decoded strings (a `|` block loses its
//! indentation, a JSON string loses its escapes), so each one carries a [`SourceMap`] that turns an
//! offset in the decoded text into an offset in the file.

use std::fmt;
use std::sync::{Arc, OnceLock};

/// A half-open byte range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    #[must_use]
    pub fn new(start: usize, end: usize) -> Self {
        debug_assert!(start <= end);
        Self {
            start: start as u32,
            end: end as u32,
        }
    }

    #[must_use]
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    #[must_use]
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    #[must_use]
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The smallest span covering both.
    #[must_use]
    pub fn cover(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// Index of a file in a [`SourceDb`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

impl FileId {
    /// No file: the values of objects read from the API server for the webhook and the
    /// controller, whose findings are never rendered as code frames.
    pub const DETACHED: FileId = FileId(u32::MAX);
}

/// One input text: a file on disk, standard input, or a value received from the API server.
#[derive(Clone)]
pub struct SourceFile {
    /// Display name: a path as given on the command line, `<stdin>`, or `namespace/name` for
    /// objects that did not come from a file.
    pub name: String,
    pub text: Arc<String>,
    /// Built on first use: most files are never rendered (a 16 MB `nginx.conf` with a handful of
    /// findings, or the webhook, which prints no frames).
    lines: OnceLock<LineIndex>,
}

#[derive(Clone)]
struct LineIndex {
    starts: Vec<u32>,
    /// Lines (by index) that hold a non-ASCII byte; on the others a column is a byte difference,
    /// which keeps column lookups O(1) on the one-line JSON documents `kubectl -o json` can emit.
    non_ascii: Vec<u32>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = line_starts(text.as_bytes());
        let mut non_ascii = Vec::new();
        if !text.is_ascii() {
            let bytes = text.as_bytes();
            for (line, window) in starts.windows(2).enumerate() {
                if !bytes[window[0] as usize..window[1] as usize].is_ascii() {
                    non_ascii.push(line as u32);
                }
            }
            let last = *starts.last().expect("line 1 always starts at 0") as usize;
            if !bytes[last..].is_ascii() {
                non_ascii.push((starts.len() - 1) as u32);
            }
        }
        Self { starts, non_ascii }
    }
}

/// Byte offsets where the lines of `bytes` start: 0, then one past every `\n`.
///
/// Tests eight bytes per step (a 16 MB `nginx.conf` has 600,000 lines, and finding them one
/// `memchr` call at a time cost more than parsing a third of the file).
#[must_use]
pub fn line_starts(bytes: &[u8]) -> Vec<u32> {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const NEWLINES: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    let mut starts = Vec::with_capacity(bytes.len() / 32 + 1);
    starts.push(0);
    let mut words = bytes.chunks_exact(8);
    let mut base = 0u32;
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().expect("eight bytes")) ^ NEWLINES;
        // The high bit of each byte that was a `\n` (now zero), and of no other byte.
        let mut mask = !(((x & LOW7) + LOW7) | x | LOW7);
        while mask != 0 {
            starts.push(base + mask.trailing_zeros() / 8 + 1);
            mask &= mask - 1;
        }
        base += 8;
    }
    for (i, &b) in words.remainder().iter().enumerate() {
        if b == b'\n' {
            starts.push(base + i as u32 + 1);
        }
    }
    starts
}

/// The 1-based line of `offset` in text whose lines start at `starts`.
#[must_use]
pub fn line_of(starts: &[u32], offset: u32) -> usize {
    match starts.binary_search(&offset) {
        Ok(i) => i + 1,
        Err(i) => i,
    }
}

impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFile")
            .field("name", &self.name)
            .field("len", &self.text.len())
            .finish_non_exhaustive()
    }
}

/// A 1-based line and column (column counted in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

impl SourceFile {
    #[must_use]
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        // An owned String moves in without a copy (a 16 MB nginx.conf is read once).
        Self {
            name: name.into(),
            text: Arc::new(text.into()),
            lines: OnceLock::new(),
        }
    }

    fn index(&self) -> &LineIndex {
        self.lines.get_or_init(|| LineIndex::new(&self.text))
    }

    /// 1-based line and character column of a byte offset (clamped to the text).
    #[must_use]
    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = offset.min(self.text.len() as u32);
        let index = self.index();
        let line_idx = line_of(&index.starts, offset) - 1;
        let start = index.starts[line_idx] as usize;
        let mut end = offset as usize;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let column = if index.non_ascii.binary_search(&(line_idx as u32)).is_ok() {
            self.text[start..end].chars().count()
        } else {
            end - start
        };
        LineCol {
            line: line_idx + 1,
            column: column + 1,
        }
    }

    /// The 1-based line of a byte offset.
    #[must_use]
    pub fn line_of(&self, offset: u32) -> usize {
        line_of(&self.index().starts, offset)
    }

    /// Byte offset of the start of a 1-based line.
    #[must_use]
    pub fn line_start(&self, line: usize) -> usize {
        self.index()
            .starts
            .get(line.saturating_sub(1))
            .map_or(self.text.len(), |&s| s as usize)
    }

    /// Byte range of a 1-based line, without its line break.
    #[must_use]
    pub fn line_range(&self, line: usize) -> std::ops::Range<usize> {
        let start = self.line_start(line);
        let mut end = self.line_start(line + 1);
        let bytes = self.text.as_bytes();
        while end > start && matches!(bytes[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        start..end
    }

    #[must_use]
    pub fn line_count(&self) -> usize {
        self.index().starts.len()
    }
}

/// All files of one run.
#[derive(Debug, Default, Clone)]
pub struct SourceDb {
    files: Vec<SourceFile>,
}

impl SourceDb {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId((self.files.len() - 1) as u32)
    }

    #[must_use]
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.files.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }
}

/// A place in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    pub file: FileId,
    pub span: Span,
}

/// Maps byte offsets of a decoded string back into the file it was read from.
///
/// It is a sorted list of anchors `(decoded offset, file offset)`; an offset between two anchors is
/// placed relative to the closest anchor at or before it. An identity map has one anchor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceMap {
    pub file: FileId,
    anchors: Vec<(u32, u32)>,
    /// Where the whole value sits in the file (used when an offset cannot be mapped).
    pub value_span: Span,
}

impl SourceMap {
    /// The decoded text is the file text itself starting at `base`.
    #[must_use]
    pub fn identity(file: FileId, base: u32, len: u32) -> Self {
        Self {
            file,
            anchors: vec![(0, base)],
            value_span: Span {
                start: base,
                end: base + len,
            },
        }
    }

    /// Build a map from explicit anchors (must be sorted by decoded offset).
    #[must_use]
    pub fn from_anchors(file: FileId, anchors: Vec<(u32, u32)>, value_span: Span) -> Self {
        let anchors = if anchors.is_empty() {
            vec![(0, value_span.start)]
        } else {
            anchors
        };
        Self {
            file,
            anchors,
            value_span,
        }
    }

    /// File offset of a decoded offset.
    #[must_use]
    pub fn map_offset(&self, decoded: u32) -> u32 {
        let idx = match self.anchors.binary_search_by_key(&decoded, |a| a.0) {
            Ok(i) => i,
            Err(0) => return self.value_span.start,
            Err(i) => i - 1,
        };
        let (d, f) = self.anchors[idx];
        // Bytes past the last aligned run (an escape the aligner could not follow) stay inside
        // the value rather than running past it.
        (f + (decoded - d)).clamp(self.value_span.start, self.value_span.end)
    }

    /// The decoded offset whose byte sits at `file_offset`, when one does (the inverse of
    /// [`SourceMap::map_offset`] on the bytes the decoded text has; an escape's or an
    /// indentation's other bytes have none).
    #[must_use]
    pub fn unmap_offset(&self, file_offset: u32) -> Option<u32> {
        if !(self.value_span.start..self.value_span.end).contains(&file_offset) {
            return None;
        }
        let idx = self.anchors.partition_point(|a| a.1 <= file_offset);
        let (d, f) = *self.anchors.get(idx.checked_sub(1)?)?;
        let decoded = d + (file_offset - f);
        // A later anchor starts before this offset would be reached: the byte was skipped.
        if self.anchors.get(idx).is_some_and(|next| next.0 <= decoded) {
            return None;
        }
        (self.map_offset(decoded) == file_offset).then_some(decoded)
    }

    /// File location of a decoded span. The end is mapped from the last byte so that a span
    /// never stretches across a line break the decoded text did not have.
    #[must_use]
    pub fn map_span(&self, span: Span) -> Location {
        let start = self.map_offset(span.start);
        let end = if span.is_empty() {
            start
        } else {
            self.map_offset(span.end - 1) + 1
        };
        Location {
            file: self.file,
            span: Span {
                start,
                end: end.max(start),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_and_in_chars() {
        let f = SourceFile::new("t", "ab\nçd\n\nx");
        assert_eq!(f.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(f.line_col(3), LineCol { line: 2, column: 1 });
        // 'd' is after the two-byte 'ç'
        assert_eq!(f.line_col(5), LineCol { line: 2, column: 2 });
        assert_eq!(f.line_col(8), LineCol { line: 4, column: 1 });
        assert_eq!(f.line_col(999), LineCol { line: 4, column: 2 });
        assert_eq!(f.line_range(2), 3..6);
        assert_eq!(f.line_count(), 4);
        assert_eq!(f.line_of(3), 2);
        assert_eq!(f.line_of(2), 1);
    }

    #[test]
    fn line_starts_agree_with_a_plain_scan() {
        let plain = |bytes: &[u8]| -> Vec<u32> {
            std::iter::once(0)
                .chain(
                    bytes
                        .iter()
                        .enumerate()
                        .filter(|&(_, &b)| b == b'\n')
                        .map(|(i, _)| i as u32 + 1),
                )
                .collect()
        };
        // Lengths around the 64-byte steps, breaks at either end of a step, CRLF, none at all.
        for text in [
            String::new(),
            "\n".repeat(200),
            "x".repeat(64) + "\n" + &"y".repeat(63) + "\n\r\n",
            "a\nbc\r\n".repeat(50) + "tail",
            "é\n".repeat(40),
            // Every byte value next to a line break: no other byte may pass for one.
            (0u8..128).fold(String::new(), |mut s, b| {
                s.extend([char::from(b), '\n', char::from(b)]);
                s
            }),
            "\u{8a}\u{10a}\u{a0a}\n\u{7f}\u{80}".repeat(9),
        ] {
            assert_eq!(
                line_starts(text.as_bytes()),
                plain(text.as_bytes()),
                "{text:?}"
            );
        }
        // Pseudo-random bytes near the line break's value, at every length up to 300.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    [b'\n', 0x0b, 0x09, 0x8a, 0xff, 0x00, b'a', 0x0a ^ 0x80][(seed % 8) as usize]
                })
                .collect();
            assert_eq!(line_starts(&bytes), plain(&bytes), "{bytes:?}");
        }
    }

    #[test]
    fn columns_count_characters_only_on_lines_with_them() {
        let f = SourceFile::new("t", "abc\nçç x\nabc");
        assert_eq!(f.line_col(9), LineCol { line: 2, column: 4 });
        assert_eq!(f.line_col(13), LineCol { line: 3, column: 3 });
        let last = SourceFile::new("t", "a\nçx");
        assert_eq!(last.line_col(4), LineCol { line: 2, column: 2 });
    }

    #[test]
    fn source_map_uses_the_closest_anchor() {
        // decoded "ab\ncd" from a block scalar whose lines start at 10 and 20
        let m = SourceMap::from_anchors(FileId(0), vec![(0, 10), (3, 20)], Span::new(8, 22));
        assert_eq!(m.map_offset(1), 11);
        assert_eq!(m.map_offset(3), 20);
        assert_eq!(m.map_offset(4), 21);
        assert_eq!(m.map_span(Span::new(3, 5)).span, Span::new(20, 22));
    }
}
