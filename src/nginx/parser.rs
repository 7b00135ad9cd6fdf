//! A tokenizer and parser that follow nginx's own reader (`ngx_conf_read_token`) byte for byte
//! where it matters: words end at white space, `;` or `{`; `#` starts a comment only at the start
//! of a word; `${var}` keeps its braces inside the word; a `}` inside a word belongs to it; a quoted
//! word must be followed by white space, `;`, `{` or `)`; backslash escapes work in and out of
//! quotes. `*_by_lua_block { ... }` bodies are skipped as Lua (strings, long brackets and comments
//! included), as lua-nginx-module does.
//!
//! The parser never panics and never recurses: nesting is tracked on an explicit stack and capped at
//! [`MAX_DEPTH`], so hostile input (100,000 nested braces) costs linear time and bounded memory.

use crate::nginx::ast::{
    Args, Block, Body, Comment, Config, Directive, Quote, SyntaxError, SyntaxErrorKind, Word,
};
use crate::source::Span;

/// Deepest block nesting the parser follows. Real configurations stay under 10.
pub const MAX_DEPTH: usize = 64;

/// Syntax errors kept per text; nginx itself stops at the first. Past this many the text is
/// junk, and 100,000 stray `;` must not become 100,000 findings.
pub const MAX_ERRORS: usize = 100;

/// Parse a whole configuration or a bare snippet.
#[must_use]
pub fn parse(src: &str) -> Config {
    Parser {
        src,
        b: src.as_bytes(),
        pos: 0,
        comments: Vec::new(),
        errors: Vec::new(),
    }
    .run()
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
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    comments: Vec<Comment>,
    errors: Vec<SyntaxError>,
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

impl Parser<'_> {
    fn error(&mut self, start: usize, end: usize, kind: SyntaxErrorKind) {
        // The depth error is kept even past the cap: it says why the rest was not read.
        if self.errors.len() >= MAX_ERRORS && !matches!(kind, SyntaxErrorKind::TooDeep(_)) {
            return;
        }
        self.errors.push(SyntaxError {
            span: Span::new(start, end.max(start)),
            kind,
        });
    }

    fn run(mut self) -> Config {
        if let Some(nul) = memchr::memchr(0, self.b) {
            self.error(nul, nul + 1, SyntaxErrorKind::NulByte);
        }
        let mut stack: Vec<Frame> = Vec::new();
        let mut current: Vec<Directive> = Vec::new();
        let mut words: Vec<Word> = Vec::new();
        let len = self.b.len();
        loop {
            while self.pos < len && is_space(self.b[self.pos]) {
                self.pos += 1;
            }
            if self.pos >= len {
                break;
            }
            let c = self.b[self.pos];
            match c {
                b';' => {
                    if words.is_empty() {
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
                    if words.is_empty() {
                        if stack.len() >= MAX_DEPTH {
                            self.error(open, open + 1, SyntaxErrorKind::TooDeep(MAX_DEPTH));
                            self.pos = len;
                            break;
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
                    if self.src[name.span.range()].ends_with("_by_lua_block") {
                        if let Some(close) = self.skip_lua(open) {
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
                        } else {
                            self.error(open, len, SyntaxErrorKind::UnterminatedLua);
                            self.pos = len;
                        }
                        continue;
                    }
                    if stack.len() >= MAX_DEPTH {
                        self.error(open, open + 1, SyntaxErrorKind::TooDeep(MAX_DEPTH));
                        // Stop here: whatever follows cannot be attributed to a sane structure.
                        self.pos = len;
                        break;
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
                    if !words.is_empty() {
                        self.error(self.pos, self.pos + 1, SyntaxErrorKind::Unexpected('}'));
                        words.clear();
                    }
                    if let Some(frame) = stack.pop() {
                        close(frame, &mut current, self.pos + 1);
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
        if let Some(first) = words.first() {
            self.error(
                first.span.start as usize,
                len,
                SyntaxErrorKind::MissingSemicolon,
            );
        }
        if let Some(innermost) = stack.last() {
            let open = innermost.open;
            self.error(open, open + 1, SyntaxErrorKind::UnclosedBlock);
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
            if self.pos < len {
                let next = self.b[self.pos];
                if !(is_space(next) || matches!(next, b';' | b'{' | b')')) {
                    let ch = self.src[self.pos..].chars().next().unwrap_or('?');
                    self.error(
                        self.pos,
                        self.pos + ch.len_utf8(),
                        SyntaxErrorKind::UnexpectedAfterQuote(ch),
                    );
                }
            }
            return Some(Word {
                span: Span::new(start, self.pos),
                quote,
                escaped,
            });
        }
        let mut escaped = false;
        let mut variable = false;
        while self.pos < len {
            // Most bytes of a word are plain: skip them without branching on each kind.
            while self.pos < len && !WORD_SPECIAL[self.b[self.pos] as usize] {
                self.pos += 1;
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

    fn names(src: &str, c: &Config) -> Vec<String> {
        c.directives
            .iter()
            .map(|d| d.name(src).to_string())
            .collect()
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
    }

    #[test]
    fn syntax_errors_are_capped() {
        let c = parse(&";".repeat(100_000));
        assert_eq!(c.errors.len(), MAX_ERRORS);
        assert_eq!(c.errors[0].kind, SyntaxErrorKind::Unexpected(';'));
    }
}
