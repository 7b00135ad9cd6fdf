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
        let mut starts = Vec::with_capacity(text.len() / 32 + 1);
        let mut non_ascii = Vec::new();
        starts.push(0);
        let bytes = text.as_bytes();
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len())) {
            if !bytes[start..nl].is_ascii() {
                non_ascii.push((starts.len() - 1) as u32);
            }
            if nl < bytes.len() {
                starts.push((nl + 1) as u32);
            }
            start = nl + 1;
        }
        Self { starts, non_ascii }
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
        let line_idx = match index.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
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
