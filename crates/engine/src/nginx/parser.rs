//! A tokenizer and parser that follow nginx's own reader (`ngx_conf_read_token`) byte for byte
//! where it matters: words end at white space, `;` or `{`; `#` starts a comment only at the start
//! of a word; `${var}` keeps its braces inside the word; a `}` inside a word belongs to it; a quoted
//! word must be followed by white space, `;`, `{` or `)`; backslash escapes work in and out of
//! quotes. `*_by_lua_block { ... }` bodies are skipped as Lua (strings, long brackets and comments
//! included), as lua-nginx-module does.
//!
//! The parser never panics and never recurses: nesting is tracked on an explicit stack and capped at
//! [`MAX_DEPTH`], so hostile input (100,000 nested braces) costs linear time and bounded memory. A
//! block opened deeper is reported once and scanned for its matching `}` (words, quotes, comments
//! and Lua bodies read as everywhere else, nothing kept), and reading goes on after it.
//!
//! One mistake gives one error: a text that ends inside a quoted string or a Lua body is not also
//! reported for the `;` or `}` the string swallowed, and the rest of a word glued to a closing quote
//! is dropped with the error, so that the quote an unbalanced one pairs with on a later line does
//! not open a string of its own.

use crate::nginx::ast::{
    Args, Block, Body, Comment, Config, Directive, Quote, SyntaxError, SyntaxErrorKind, Word,
};
use crate::source::Span;

/// Deepest block nesting the parser follows. Real configurations stay under 10.
pub const MAX_DEPTH: usize = 64;

/// Syntax errors kept per text; nginx itself stops at the first. Past this many the text is
/// junk, and 100,000 stray `;` must not become 100,000 findings.
pub const MAX_ERRORS: usize = 100;

/// Texts shorter than this are parsed on one thread even by [`parse_parallel`]: starting threads
/// costs more than it saves.
pub const PARALLEL_MIN: usize = 1 << 20;

/// Parse a whole configuration or a bare snippet.
#[must_use]
pub fn parse(src: &str) -> Config {
    PARSES.with(|n| n.set(n.get() + 1));
    let mut parser = Parser::new(src, 0, src.len());
    if let Some(nul) = memchr::memchr(0, src.as_bytes()) {
        parser.error(nul, nul + 1, SyntaxErrorKind::NulByte);
    }
    let reading = parser.read(Start::TopLevel);
    parser.finish(reading)
}

thread_local! {
    static PARSES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many texts [`parse`] has read on this thread: lets tests show that a controller
/// ConfigMap's snippets are parsed once per change, not once per object checked.
#[must_use]
pub fn parses_on_this_thread() -> u64 {
    PARSES.with(std::cell::Cell::get)
}

/// [`parse`], on every core for a large rendered `nginx.conf`; the result is the same.
///
/// The text is cut before `server {` lines near equal shares and each piece is read on its own
/// thread, the first from the top level and the others as if inside one block (`http`). That
/// guess is checked: the first piece must end inside exactly one block, the middle ones where they
/// began, the last must close that block, and no piece may hold an error or an unfinished
/// directive (a cut inside a quoted string, a Lua block or a directive always leaves one). Then
/// each piece was read in the state a whole-text reading would have been in, and the pieces are
/// joined; otherwise the text is parsed again on one thread.
#[must_use]
pub fn parse_parallel(src: &str) -> Config {
    let workers = crate::threads::workers();
    if workers < 2 || src.len() < PARALLEL_MIN {
        return parse(src);
    }
    let cuts = cut_points(src, workers);
    parse_split(src, &cuts).unwrap_or_else(|| parse(src))
}

/// Read `src` in pieces cut at `cuts` (sorted offsets of line starts), one thread per piece;
/// `None` when the pieces cannot be joined into what [`parse`] returns (see [`parse_parallel`]).
#[doc(hidden)]
#[must_use]
pub fn parse_split(src: &str, cuts: &[usize]) -> Option<Config> {
    let valid = cuts.first().is_some_and(|&c| c > 0)
        && cuts.windows(2).all(|w| w[0] < w[1])
        && cuts
            .iter()
            .all(|&c| c < src.len() && src.as_bytes()[c - 1] == b'\n');
    if !valid || memchr::memchr(0, src.as_bytes()).is_some() {
        return None;
    }
    let bounds: Vec<(usize, usize)> = std::iter::once(0)
        .chain(cuts.iter().copied())
        .zip(cuts.iter().copied().chain(std::iter::once(src.len())))
        .collect();
    let read = |(start, end): (usize, usize)| {
        let mut parser = Parser::new(src, start, end);
        let how = if start == 0 {
            Start::TopLevel
        } else {
            Start::InsideBlock
        };
        let reading = parser.read(how);
        Piece {
            reading,
            comments: parser.comments,
            errors: parser.errors,
        }
    };
    let read = &read;
    let pieces: Vec<Piece> = std::thread::scope(|scope| {
        let spawned: Vec<_> = bounds[1..]
            .iter()
            .map(|&b| crate::threads::spawn_or_run(scope, "nginx-parse", move || read(b)))
            .collect();
        std::iter::once(read(bounds[0]))
            .chain(spawned.into_iter().map(crate::threads::Task::join))
            .collect()
    });
    join(pieces)
}

/// Offsets of `server {` lines that cut `src` into about `pieces` equal shares.
fn cut_points(src: &str, pieces: usize) -> Vec<usize> {
    let b = src.as_bytes();
    let finder = memchr::memmem::Finder::new(b"server");
    let mut cuts: Vec<usize> = Vec::new();
    for k in 1..pieces {
        let mut from = (b.len() / pieces * k).max(cuts.last().map_or(1, |&c| c + 1));
        while let Some(i) = finder.find(&b[from.min(b.len())..]).map(|i| i + from) {
            from = i + 1;
            let line = b[..i]
                .iter()
                .rposition(|&c| c == b'\n')
                .map_or(0, |n| n + 1);
            let rest = &b[i + 6..];
            let brace = rest.iter().position(|&c| c != b' ' && c != b'\t');
            if line > 0
                && b[line..i].iter().all(|&c| c == b' ' || c == b'\t')
                && brace.is_some_and(|j| j > 0 && rest[j] == b'{')
            {
                cuts.push(line);
                break;
            }
        }
    }
    cuts.dedup();
    cuts
}

/// One piece of a text read by [`parse_split`].
struct Piece {
    reading: Reading,
    comments: Vec<Comment>,
    errors: Vec<SyntaxError>,
}

/// Join pieces into the [`Config`] of the whole text, if each was read in the state a whole
/// reading would have been in at its start (see [`parse_parallel`]).
fn join(pieces: Vec<Piece>) -> Option<Config> {
    let clean = |p: &Piece| {
        p.errors.is_empty() && p.reading.words.is_empty() && p.reading.skipping.is_none()
    };
    let (first, rest) = pieces.split_first()?;
    let (last, middle) = rest.split_last()?;
    if !pieces.iter().all(clean)
        || first.reading.stack.len() != 1
        || first.reading.stack[0].anonymous
        || middle
            .iter()
            .any(|p| !p.reading.stack.is_empty() || p.reading.outer_close.is_some())
        || !last.reading.stack.is_empty()
    {
        return None;
    }
    let (close_at, inside) = last.reading.outer_close?;
    let mut pieces = pieces.into_iter();
    let first = pieces.next()?;
    let mut top = first.reading.current;
    let frame = first.reading.stack.into_iter().next()?;
    let mut comments = first.comments;
    let mut rest: Vec<Piece> = pieces.collect();
    let last = rest.pop()?;
    let count = top.len() - frame.start
        + rest.iter().map(|p| p.reading.current.len()).sum::<usize>()
        + inside;
    let mut children = Vec::with_capacity(count);
    children.extend(top.drain(frame.start..));
    for p in rest {
        children.extend(p.reading.current);
        comments.extend(p.comments);
    }
    let mut after = last.reading.current;
    children.extend(after.drain(..inside));
    comments.extend(last.comments);
    top.push(Directive {
        name: frame.name,
        args: frame.args,
        block: Some(Box::new(Block {
            span: Span::new(frame.open, close_at + 1),
            body: Body::Directives(children),
        })),
        span: Span::new(frame.name.span.start as usize, close_at + 1),
    });
    top.append(&mut after);
    top.shrink_to_fit();
    Some(Config {
        directives: top,
        comments,
        errors: Vec::new(),
    })
}

/// How a reading starts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Start {
    /// At the top level of the text.
    TopLevel,
    /// Inside one block opened before the piece read (a cut of [`parse_split`]).
    InsideBlock,
}

/// Where a reading stopped.
struct Reading {
    /// Directives read and not yet inside a closed block of the piece.
    current: Vec<Directive>,
    /// Blocks still open.
    stack: Vec<Frame>,
    /// Words of a directive with no `;` or `{` yet.
    words: Vec<Word>,
    /// For [`Start::InsideBlock`]: the `}` that closed the enclosing block, and how many
    /// directives of `current` came before it (they belong inside that block).
    outer_close: Option<(usize, usize)>,
    /// The `{` of a block opened too deep whose end was not reached.
    skipping: Option<usize>,
}

struct Frame {
    name: Word,
    args: Args,
    open: usize,
    /// Where this block's directives start in the parser's pending list.
    start: usize,
    /// A `{` with no directive before it: its content is dropped.
    anonymous: bool,
}

/// End a block at `end` (exclusive): the directives read since it opened leave the pending list,
/// in a list of exactly their number, as the block of the directive that opened it, which takes
/// their place. (One pending list for all levels: a 16 MB `nginx.conf` has 300,000 directives,
/// and lists grown by doubling would hold a third more memory than they use.)
fn close(frame: Frame, pending: &mut Vec<Directive>, end: usize) {
    let inner: Vec<Directive> = pending.drain(frame.start..).collect();
    if !frame.anonymous {
        pending.push(Directive {
            name: frame.name,
            args: frame.args,
            block: Some(Box::new(Block {
                span: Span::new(frame.open, end),
                body: Body::Directives(inner),
            })),
            span: Span::new(frame.name.span.start as usize, end),
        });
    }
}

struct Parser<'a> {
    /// The text up to the end of the piece being read (spans count from the text's start).
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    comments: Vec<Comment>,
    errors: Vec<SyntaxError>,
    /// The text ended inside a quoted string or a Lua body, reported where it opened: what is
    /// still open at the end is a consequence, not another mistake.
    cut_short: bool,
    /// A depth error was reported: the cap on errors keeps the first one.
    too_deep: bool,
}

/// Bytes that end or change an unquoted word: white space, `;`, `{`, `\\` and `$`.
static WORD_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    let special = b" \t\r\n;{\\$";
    while i < special.len() {
        t[special[i] as usize] = true;
        i += 1;
    }
    t
};

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Parser<'a> {
    /// A parser for the piece `start..end` of `src` (`end` on a character boundary).
    fn new(src: &'a str, start: usize, end: usize) -> Self {
        let src = &src[..end];
        Parser {
            src,
            b: src.as_bytes(),
            pos: start,
            comments: Vec::new(),
            errors: Vec::new(),
            cut_short: false,
            too_deep: false,
        }
    }

    fn error(&mut self, start: usize, end: usize, kind: SyntaxErrorKind) {
        // The first depth error is kept even past the cap: it says why a block was not read.
        let first_too_deep = matches!(kind, SyntaxErrorKind::TooDeep(_)) && !self.too_deep;
        if self.errors.len() >= MAX_ERRORS && !first_too_deep {
            return;
        }
        self.too_deep |= first_too_deep;
        self.errors.push(SyntaxError {
            span: Span::new(start, end.max(start)),
            kind,
            opened_at: None,
        });
    }

    /// Read from `self.pos` to the end of the piece.
    #[allow(
        clippy::too_many_lines,
        reason = "one loop over the bytes, one arm per delimiter, as nginx's reader"
    )]
    fn read(&mut self, start: Start) -> Reading {
        let mut stack: Vec<Frame> = Vec::new();
        let mut current: Vec<Directive> = Vec::new();
        let mut words: Vec<Word> = Vec::new();
        let mut outer_close = None;
        // A block opened past `MAX_DEPTH`: its `{`, and how many blocks are open inside it,
        // itself included. Its content is scanned for its end and dropped.
        let mut skipping: Option<(usize, usize)> = None;
        let len = self.b.len();
        loop {
            // Blocks open around this point, counting one opened before a piece.
            let depth =
                stack.len() + usize::from(start == Start::InsideBlock && outer_close.is_none());
            let Some(blank) = self.b[self.pos..].iter().position(|&c| !is_space(c)) else {
                self.pos = len;
                break;
            };
            self.pos += blank;
            let c = self.b[self.pos];
            match c {
                b';' => {
                    if skipping.is_some() {
                        words.clear();
                    } else if words.is_empty() {
                        self.error(self.pos, self.pos + 1, SyntaxErrorKind::Unexpected(';'));
                    } else {
                        let name = words[0];
                        current.push(Directive {
                            name,
                            args: Args::from_slice(&words[1..]),
                            block: None,
                            span: Span::new(name.span.start as usize, self.pos + 1),
                        });
                        words.clear();
                    }
                    self.pos += 1;
                }
                b'{' => {
                    let open = self.pos;
                    self.pos += 1;
                    let lua = words
                        .first()
                        .is_some_and(|w| self.src[w.span.range()].ends_with("_by_lua_block"));
                    if let Some((_, inside)) = &mut skipping {
                        words.clear();
                        if lua {
                            if let Some(close) = self.lua_body(open) {
                                self.pos = close + 1;
                            }
                        } else {
                            *inside += 1;
                        }
                        continue;
                    }
                    if words.is_empty() {
                        if depth >= MAX_DEPTH {
                            self.error(open, open + 1, SyntaxErrorKind::TooDeep(MAX_DEPTH));
                            skipping = Some((open, 1));
                            continue;
                        }
                        self.error(open, open + 1, SyntaxErrorKind::Unexpected('{'));
                        stack.push(Frame {
                            name: Word {
                                span: Span::new(open, open + 1),
                                quote: Quote::None,
                                escaped: false,
                            },
                            args: Args::new(),
                            open,
                            start: current.len(),
                            anonymous: true,
                        });
                        continue;
                    }
                    let name = words[0];
                    let args = Args::from_slice(&words[1..]);
                    words.clear();
                    if lua {
                        if let Some(close) = self.lua_body(open) {
                            current.push(Directive {
                                name,
                                args,
                                block: Some(Box::new(Block {
                                    span: Span::new(open, close + 1),
                                    body: Body::Opaque,
                                })),
                                span: Span::new(name.span.start as usize, close + 1),
                            });
                            self.pos = close + 1;
                        }
                        continue;
                    }
                    if depth >= MAX_DEPTH {
                        // Reported once; the block is scanned to its `}` and dropped, and the
                        // lines after it are read.
                        self.error(open, open + 1, SyntaxErrorKind::TooDeep(MAX_DEPTH));
                        skipping = Some((open, 1));
                        continue;
                    }
                    stack.push(Frame {
                        name,
                        args,
                        open,
                        start: current.len(),
                        anonymous: false,
                    });
                }
                b'}' => {
                    if let Some((_, inside)) = &mut skipping {
                        words.clear();
                        *inside -= 1;
                        if *inside == 0 {
                            skipping = None;
                        }
                        self.pos += 1;
                        continue;
                    }
                    if !words.is_empty() {
                        // A `}` glued to a quote was reported with the quote.
                        let reported = self
                            .errors
                            .last()
                            .is_some_and(|e| e.span.start as usize == self.pos);
                        if !reported {
                            self.error(self.pos, self.pos + 1, SyntaxErrorKind::Unexpected('}'));
                        }
                        words.clear();
                    }
                    if let Some(frame) = stack.pop() {
                        close(frame, &mut current, self.pos + 1);
                    } else if start == Start::InsideBlock && outer_close.is_none() {
                        outer_close = Some((self.pos, current.len()));
                    } else {
                        self.error(self.pos, self.pos + 1, SyntaxErrorKind::Unexpected('}'));
                    }
                    self.pos += 1;
                }
                // Words end at white space or a delimiter, so a `#` here starts a word: a comment.
                b'#' => {
                    let start = self.pos;
                    while self.pos < len && self.b[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                    self.comments.push(Comment {
                        span: Span::new(start, self.pos),
                    });
                }
                _ => {
                    if let Some(word) = self.word() {
                        words.push(word);
                    }
                }
            }
        }
        Reading {
            current,
            stack,
            words,
            outer_close,
            skipping: skipping.map(|(open, _)| open),
        }
    }

    /// The Lua body that starts after the `{` at `open`: the index of its closing `}`, or, when
    /// the text ends inside it, `None` with the error reported and the reading at the end.
    fn lua_body(&mut self, open: usize) -> Option<usize> {
        let close = self.skip_lua(open);
        if close.is_none() {
            let len = self.b.len();
            self.error(open, len, SyntaxErrorKind::UnterminatedLua);
            self.cut_short = true;
            self.pos = len;
        }
        close
    }

    /// End a whole-text reading: report what is unfinished and close what is open.
    fn finish(mut self, reading: Reading) -> Config {
        let Reading {
            mut current,
            mut stack,
            words,
            skipping,
            ..
        } = reading;
        let len = self.b.len();
        // A text cut short inside a string or a Lua body was reported where that opened; the
        // words of a block too deep to read are not judged.
        if !self.cut_short {
            if let Some(first) = words.first().filter(|_| skipping.is_none()) {
                self.error(
                    first.span.start as usize,
                    len,
                    SyntaxErrorKind::MissingSemicolon,
                );
            }
            if let Some(open) = stack.last().map(|f| f.open).or(skipping) {
                self.error(open, open + 1, SyntaxErrorKind::UnclosedBlock);
            }
        }
        // Close what is still open so that the tree keeps every directive that was read.
        while let Some(frame) = stack.pop() {
            close(frame, &mut current, len);
        }
        current.shrink_to_fit();
        Config {
            directives: current,
            comments: self.comments,
            errors: self.errors,
        }
    }

    fn word(&mut self) -> Option<Word> {
        let len = self.b.len();
        let start = self.pos;
        let c = self.b[start];
        if c == b'"' || c == b'\'' {
            let quote = if c == b'"' {
                Quote::Double
            } else {
                Quote::Single
            };
            let mut escaped = false;
            self.pos += 1;
            loop {
                if self.pos >= len {
                    self.error(start, len, SyntaxErrorKind::UnterminatedQuote);
                    self.cut_short = true;
                    return None;
                }
                let ch = self.b[self.pos];
                if ch == b'\\' {
                    escaped = true;
                    self.pos = (self.pos + 2).min(len);
                    continue;
                }
                self.pos += 1;
                if ch == c {
                    break;
                }
            }
            let end = self.pos;
            if self.pos < len {
                let next = self.b[self.pos];
                if !(is_space(next) || matches!(next, b';' | b'{' | b')')) {
                    let ch = self.src[self.pos..].chars().next().unwrap_or('?');
                    let errors = self.errors.len();
                    self.error(
                        self.pos,
                        self.pos + ch.len_utf8(),
                        SyntaxErrorKind::UnexpectedAfterQuote(ch),
                    );
                    // A string over several lines most likely paired a quote left open with
                    // the next one: say where it opened.
                    if let Some(e) = self.errors.get_mut(errors)
                        && memchr::memchr(b'\n', &self.b[start..end]).is_some()
                    {
                        e.opened_at = Some(Span::new(start, start + 1));
                    }
                    // The rest of the glued word goes with the error: when the string paired an
                    // unbalanced quote with one on a later line, a quote in that rest would open
                    // a string running to the end of the text.
                    while self.pos < len
                        && !(is_space(self.b[self.pos])
                            || matches!(self.b[self.pos], b';' | b'{' | b'}'))
                    {
                        self.pos += 1;
                    }
                }
            }
            return Some(Word {
                span: Span::new(start, end),
                quote,
                escaped,
            });
        }
        let mut escaped = false;
        let mut variable = false;
        while self.pos < len {
            // Most bytes of a word are plain: skip them without branching on each kind.
            let plain = self.b[self.pos..]
                .iter()
                .position(|&c| WORD_SPECIAL[c as usize])
                .unwrap_or(len - self.pos);
            if plain > 0 {
                self.pos += plain;
                variable = false;
            }
            if self.pos >= len {
                break;
            }
            let ch = self.b[self.pos];
            if ch == b'{' && variable {
                self.pos += 1;
                continue;
            }
            variable = false;
            match ch {
                b'\\' => {
                    escaped = true;
                    self.pos = (self.pos + 2).min(len);
                }
                b'$' => {
                    variable = true;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' => break,
                _ => self.pos += 1,
            }
        }
        // A backslash right before a multi-byte character may have stepped into it.
        while !self.src.is_char_boundary(self.pos) {
            self.pos += 1;
        }
        Some(Word {
            span: Span::new(start, self.pos),
            quote: Quote::None,
            escaped,
        })
    }

    /// Skip a Lua body that starts after the `{` at `open`; returns the index of the closing `}`.
    fn skip_lua(&self, open: usize) -> Option<usize> {
        let b = self.b;
        let len = b.len();
        let mut depth = 1usize;
        let mut i = open + 1;
        while i < len {
            match b[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                q @ (b'"' | b'\'') => {
                    i += 1;
                    while i < len && b[i] != q && b[i] != b'\n' {
                        if b[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                }
                b'-' if b.get(i + 1) == Some(&b'-') => {
                    i += 2;
                    if let Some(end) = long_bracket_end(b, i) {
                        i = end;
                    } else {
                        while i < len && b[i] != b'\n' {
                            i += 1;
                        }
                    }
                }
                b'[' => {
                    if let Some(end) = long_bracket_end(b, i) {
                        i = end;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        None
    }
}

/// If a Lua long bracket (`[[`, `[==[`) opens at `i`, the index of the last byte of its close.
#[allow(
    clippy::many_single_char_names,
    reason = "index arithmetic over one byte slice"
)]
fn long_bracket_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut j = i + 1;
    while b.get(j) == Some(&b'=') {
        j += 1;
    }
    if b.get(j) != Some(&b'[') {
        return None;
    }
    let level = j - i - 1;
    let mut k = j + 1;
    while k < b.len() {
        if b[k] == b']' {
            let mut m = k + 1;
            while b.get(m) == Some(&b'=') {
                m += 1;
            }
            if m - k - 1 == level && b.get(m) == Some(&b']') {
                return Some(m);
            }
        }
        k += 1;
    }
    // An unterminated long string runs to the end; the caller then reports the open block.
    Some(b.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    fn names(src: &str, c: &Config) -> Vec<String> {
        c.directives
            .iter()
            .map(|d| d.name(src).to_string())
            .collect()
    }

    /// An ingress-nginx-shaped configuration with `servers` servers and, when `traps`, a Lua
    /// block and a quoted string that hold `server {` lines a cut must not fall into.
    fn rendered_with(servers: usize, traps: bool) -> String {
        let mut s = String::from(
            "# main\nworker_processes 2;\nevents { worker_connections 16; }\nhttp {\n\tproxy_set_header X-Http 1;\n",
        );
        for i in 0..servers {
            let _ = write!(
                s,
                "\t## start server s{i}\n\tserver {{\n\t\tserver_name s{i};\n\t\tlocation / {{\n\t\t\tset $namespace \"ns\";\n\t\t\tproxy_set_header X-Forwarded-Proto $scheme;\n\t\t\tproxy_pass http://upstream_balancer;\n\t\t}}\n"
            );
            if traps && i % 5 == 2 {
                s += "\t\taccess_by_lua_block {\n\t\t\tlocal x = [[\n\tserver {\n]]\n\t\t}\n";
            }
            if traps && i % 7 == 3 {
                s += "\t\treturn 200 \"a\n\tserver {\nb\";\n";
            }
            s += "\t}\n";
        }
        s += "\tupstream u {\n\t\tserver 10.0.0.1;\n\t}\n}\nstream {\n\tserver {\n\t\tlisten 9000;\n\t}\n}\n";
        s
    }

    fn rendered(servers: usize) -> String {
        rendered_with(servers, true)
    }

    #[test]
    fn split_reading_equals_whole_reading() {
        let src = rendered_with(40, false);
        let whole = parse(&src);
        assert!(whole.errors.is_empty(), "{:?}", whole.errors);
        for pieces in 2..=6 {
            let cuts = cut_points(&src, pieces);
            assert_eq!(cuts.len(), pieces - 1, "{pieces} pieces");
            assert!(parse_split(&src, &cuts) == Some(whole.clone()), "{cuts:?}");
        }
        // With traps some cuts land in them and are refused; whatever is joined is exact.
        let src = rendered(40);
        let whole = parse(&src);
        let mut joined = 0;
        for pieces in 2..=6 {
            if let Some(c) = parse_split(&src, &cut_points(&src, pieces)) {
                assert!(c == whole, "{pieces} pieces");
                joined += 1;
            }
        }
        assert!(joined > 0);
    }

    #[test]
    fn a_cut_anywhere_joins_to_the_whole_reading_or_is_refused() {
        let src = rendered(12);
        let whole = parse(&src);
        let line_starts: Vec<usize> = crate::source::line_starts(src.as_bytes())
            .into_iter()
            .map(|o| o as usize)
            .filter(|&o| o > 0 && o < src.len())
            .collect();
        let (mut joined, mut refused) = (0, 0);
        for &a in &line_starts {
            match parse_split(&src, &[a]) {
                Some(c) => {
                    assert!(
                        c == whole,
                        "cut at {a}: {:?}",
                        &src[a..(a + 20).min(src.len())]
                    );
                    joined += 1;
                }
                None => refused += 1,
            }
        }
        // Cuts at the http level (before each server's comment and `server {` line, before the
        // upstream) are taken; those inside a server, main, events or stream are refused.
        assert!(
            joined >= 2 * 12 && refused > joined,
            "{joined} joined, {refused} refused"
        );
        for pair in line_starts.windows(2).step_by(3) {
            if let Some(c) = parse_split(&src, pair) {
                assert!(c == whole, "cuts {pair:?}");
            }
        }
    }

    #[test]
    fn split_reading_refuses_what_it_cannot_join() {
        // Broken text: an error in a piece means the whole text is read again in one go.
        let mut src = rendered_with(6, false);
        src.insert(src.find("\tserver {").unwrap() + 1, '}');
        assert_eq!(parse_split(&src, &cut_points(&src, 3)), None);
        // A NUL byte, cuts out of order, off a line start or out of range.
        let src = rendered_with(6, false);
        let cuts = cut_points(&src, 2);
        assert!(parse_split(&src, &cuts).is_some());
        assert_eq!(parse_split(&src.replacen('#', "\0", 1), &cuts), None);
        assert_eq!(parse_split(&src, &[cuts[0], cuts[0]]), None);
        assert_eq!(parse_split(&src, &[cuts[0] + 1]), None);
        assert_eq!(parse_split(&src, &[src.len()]), None);
        assert_eq!(parse_split(&src, &[]), None);
        // No block left open at the end (http never closed): refused, and the whole reading
        // reports it.
        let open = src.replacen("\n}\nstream", "\nstream", 1);
        assert_eq!(parse_split(&open, &cut_points(&open, 2)), None);
        assert_eq!(parse(&open).errors[0].kind, SyntaxErrorKind::UnclosedBlock);
    }

    #[test]
    fn split_reading_counts_the_block_opened_before_a_piece_toward_the_depth() {
        // Named blocks nested `n` deep at the http level, in the second piece: they reach depth
        // n + 1, so 63 are fine and 64 are too deep, read whole or in pieces.
        for (n, too_deep) in [(MAX_DEPTH - 1, false), (MAX_DEPTH, true)] {
            let mut src = rendered_with(4, false);
            let at = src.rfind("\t## start").unwrap();
            src.insert_str(at, &format!("\t{}{}\n", "a { ".repeat(n), "}".repeat(n)));
            let whole = parse(&src);
            assert_eq!(
                whole
                    .errors
                    .iter()
                    .any(|e| e.kind == SyntaxErrorKind::TooDeep(MAX_DEPTH)),
                too_deep
            );
            let split = parse_split(&src, &[at]);
            if too_deep {
                assert_eq!(split, None);
            } else {
                assert!(split == Some(whole));
            }
        }
    }

    #[test]
    fn parallel_parse_equals_parse_on_a_large_text() {
        let src = rendered_with(12_000, false);
        assert!(src.len() > PARALLEL_MIN);
        assert!(parse_split(&src, &cut_points(&src, 2)).is_some());
        assert!(parse_parallel(&src) == parse(&src));
    }

    #[test]
    fn directives_args_and_values() {
        let src = "proxy_set_header  \"X-Forwarded-Proto\" $scheme;\nproxy_set_header x 'a\\'b';";
        let c = parse(src);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(names(src, &c), ["proxy_set_header", "proxy_set_header"]);
        let d = &c.directives[0];
        assert_eq!(d.args[0].value(src), "X-Forwarded-Proto");
        assert_eq!(d.args[0].quote, Quote::Double);
        assert_eq!(d.args[1].value(src), "$scheme");
        assert_eq!(
            &src[d.span.range()],
            "proxy_set_header  \"X-Forwarded-Proto\" $scheme;"
        );
        assert_eq!(c.directives[1].args[1].value(src), "a'b");
    }

    #[test]
    fn comments_only_at_word_start() {
        let src = "# full line\nreturn 200 a#b; # trailing\n";
        let c = parse(src);
        assert!(c.errors.is_empty());
        assert_eq!(c.directives.len(), 1);
        assert_eq!(c.directives[0].args[1].value(src), "a#b");
        assert_eq!(c.comments.len(), 2);
        assert_eq!(&src[c.comments[1].span.range()], "# trailing");
    }

    #[test]
    fn variable_braces_stay_in_the_word() {
        let src = "set $a ${host}x; location / { return 200 b}c; }";
        let c = parse(src);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.directives[0].args[1].value(src), "${host}x");
        let loc = &c.directives[1];
        assert_eq!(loc.children()[0].args[1].value(src), "b}c");
    }

    #[test]
    fn blocks_nest() {
        let src = "http { server { location / { proxy_pass http://a; } } }";
        let c = parse(src);
        assert!(c.errors.is_empty());
        let http = &c.directives[0];
        let server = &http.children()[0];
        let loc = &server.children()[0];
        assert_eq!(loc.args[0].value(src), "/");
        assert_eq!(loc.children()[0].name(src), "proxy_pass");
    }

    #[test]
    fn lua_bodies_are_opaque() {
        let src = "access_by_lua_block {\n  local s = \"proxy_set_header X 1; }\"\n  -- }\n  local t = [[ } ]]\n  if a then b() end\n}\nproxy_set_header Y 2;";
        let c = parse(src);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(names(src, &c), ["access_by_lua_block", "proxy_set_header"]);
        assert_eq!(c.directives[0].block.as_ref().unwrap().body, Body::Opaque);
    }

    #[test]
    fn errors_are_reported_not_panicked() {
        for (src, kind) in [
            ("proxy_set_header X 1", SyntaxErrorKind::MissingSemicolon),
            ("location / {", SyntaxErrorKind::UnclosedBlock),
            ("}", SyntaxErrorKind::Unexpected('}')),
            (";", SyntaxErrorKind::Unexpected(';')),
            ("a \"b", SyntaxErrorKind::UnterminatedQuote),
            ("a \"b\"c;", SyntaxErrorKind::UnexpectedAfterQuote('c')),
            ("content_by_lua_block { x", SyntaxErrorKind::UnterminatedLua),
            ("a\0;", SyntaxErrorKind::NulByte),
        ] {
            let c = parse(src);
            assert!(
                c.errors.iter().any(|e| e.kind == kind),
                "{src:?}: {:?}",
                c.errors
            );
        }
    }

    #[test]
    fn quote_then_paren_is_accepted() {
        let src = "if ($a = \"b\") { return 200; }";
        let c = parse(src);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.directives[0].args.len(), 4);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let src = format!("{}{}", "a {".repeat(100_000), "}".repeat(100_000));
        let c = parse(&src);
        assert!(
            c.errors
                .iter()
                .any(|e| matches!(e.kind, SyntaxErrorKind::TooDeep(_)))
        );
    }

    #[test]
    fn bare_braces_count_against_the_depth_limit() {
        let c = parse(&"{".repeat(100_000));
        assert!(
            c.errors
                .iter()
                .any(|e| e.kind == SyntaxErrorKind::TooDeep(MAX_DEPTH)),
            "{:?}",
            c.errors.last()
        );
        // One `unexpected "{"` per level, the depth error where the next one is refused, the
        // unclosed block.
        assert_eq!(c.errors.len(), MAX_DEPTH + 2);
        // Closed: no more than one error per level, and the depth error once.
        let c = parse(&format!("{}{}", "{".repeat(100_000), "}".repeat(100_000)));
        assert_eq!(c.errors.len(), MAX_DEPTH + 1);
    }

    #[test]
    fn the_first_depth_error_is_kept_past_the_cap_and_no_other() {
        let nest = format!(
            "{}{}",
            "a {".repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        let src = format!("{}{}", ";".repeat(MAX_ERRORS), nest.repeat(1000));
        let c = parse(&src);
        assert_eq!(c.errors.len(), MAX_ERRORS + 1);
        assert_eq!(
            c.errors[MAX_ERRORS].kind,
            SyntaxErrorKind::TooDeep(MAX_DEPTH)
        );
        // Below the cap each block too deep is reported, up to the cap.
        assert_eq!(parse(&nest.repeat(1000)).errors.len(), MAX_ERRORS);
    }

    fn kinds(c: &Config) -> Vec<SyntaxErrorKind> {
        c.errors.iter().map(|e| e.kind.clone()).collect()
    }

    #[test]
    fn a_balanced_block_too_deep_is_reported_once_and_reading_goes_on_after_it() {
        let n = 100_000;
        let src = format!(
            "{}{}\nproxy_set_header X-After 1;\n",
            "location / {".repeat(n),
            "}".repeat(n)
        );
        let c = parse(&src);
        assert_eq!(kinds(&c), [SyntaxErrorKind::TooDeep(MAX_DEPTH)]);
        // At the `{` of the first block too deep.
        let at = "location / {".len() * (MAX_DEPTH + 1) - 1;
        assert_eq!(c.errors[0].span, Span::new(at, at + 1));
        assert_eq!(names(&src, &c), ["location", "proxy_set_header"]);
        // The blocks followed are kept; the one too deep is dropped.
        let mut depth = 0;
        let mut d = &c.directives[0];
        while let Some(child) = d.children().first() {
            d = child;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH - 1);
        assert_eq!(d.block.as_ref().unwrap().body, Body::Directives(Vec::new()));
    }

    #[test]
    fn a_block_too_deep_is_scanned_as_the_reader_reads() {
        // Braces in strings, comments, Lua bodies, `${var}` and inside words do not count, and
        // the second block too deep is reported too: it is another mistake.
        let inside = "return 200 \"}\"; # }\n set $a ${host}; return 200 b}c;\n\
            access_by_lua_block { local s = \"}\" -- }\n }\n if ($a) { return 200 '{'; }";
        let nest = format!(
            "{}{{ {inside} }}{}",
            "a {".repeat(MAX_DEPTH),
            "}".repeat(MAX_DEPTH)
        );
        let src = format!("{nest}\nafter 1;\n{nest}\nlast 2;");
        let c = parse(&src);
        assert_eq!(
            kinds(&c),
            [
                SyntaxErrorKind::TooDeep(MAX_DEPTH),
                SyntaxErrorKind::TooDeep(MAX_DEPTH)
            ]
        );
        assert_eq!(names(&src, &c), ["a", "after", "a", "last"]);
        // A block too deep that never ends leaves its enclosing block open.
        let src = format!("{}{{ return 200 \"}}\";", "a {".repeat(MAX_DEPTH));
        assert_eq!(
            kinds(&parse(&src)),
            [
                SyntaxErrorKind::TooDeep(MAX_DEPTH),
                SyntaxErrorKind::UnclosedBlock
            ]
        );
    }

    #[test]
    fn a_text_cut_short_by_a_quote_or_lua_body_is_one_error() {
        for (src, kind) in [
            (
                "proxy_set_header X-A \"b;\nproxy_set_header X-B c;\n",
                SyntaxErrorKind::UnterminatedQuote,
            ),
            (
                "location / {\n  proxy_set_header X-A 'b;\n}\n",
                SyntaxErrorKind::UnterminatedQuote,
            ),
            (
                "location / { content_by_lua_block { x",
                SyntaxErrorKind::UnterminatedLua,
            ),
        ] {
            assert_eq!(kinds(&parse(src)), [kind], "{src:?}");
        }
        // Without the quote, the missing `;` and `}` are reported.
        assert_eq!(
            kinds(&parse("location / {\n  proxy_set_header X-A b\n")),
            [
                SyntaxErrorKind::MissingSemicolon,
                SyntaxErrorKind::UnclosedBlock
            ]
        );
    }

    #[test]
    fn an_unbalanced_quote_paired_with_a_later_one_is_one_error() {
        let src =
            "proxy_set_header X-A \"b;\nmore_set_headers \"X-B: c\";\nproxy_set_header X-C d;";
        let c = parse(src);
        assert_eq!(kinds(&c), [SyntaxErrorKind::UnexpectedAfterQuote('X')]);
        // The error points back at the quote that opened the string on the first line.
        let quote = src.find('"').unwrap();
        assert_eq!(c.errors[0].opened_at, Some(Span::new(quote, quote + 1)));
        assert_eq!(names(src, &c), ["proxy_set_header", "proxy_set_header"]);
        assert_eq!(c.directives[1].args[0].value(src), "X-C");
        // The rest of the glued word is dropped, up to a space or a delimiter; `}` still closes.
        let src = "location / { return 200 \"a\"b\"c; return 200 \"d\"}";
        let c = parse(src);
        assert_eq!(
            kinds(&c),
            [
                SyntaxErrorKind::UnexpectedAfterQuote('b'),
                SyntaxErrorKind::UnexpectedAfterQuote('}')
            ]
        );
        // The first `return` ends at its `;`; the second has none, and `}` closes the block.
        assert!(c.errors.iter().all(|e| e.opened_at.is_none()));
        let inner = c.directives[0].children();
        assert_eq!(inner.len(), 1);
        assert_eq!(inner[0].args[1].value(src), "a");
        assert_eq!(c.directives[0].span.end as usize, src.len());
    }

    #[test]
    fn syntax_errors_are_capped() {
        let c = parse(&";".repeat(100_000));
        assert_eq!(c.errors.len(), MAX_ERRORS);
        assert_eq!(c.errors[0].kind, SyntaxErrorKind::Unexpected(';'));
    }
}
