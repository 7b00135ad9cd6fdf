//! The syntax tree of an nginx configuration or snippet. Every node keeps byte spans into the text
//! it was parsed from; values are decoded on demand.

use std::borrow::Cow;

use crate::source::Span;

/// How a word was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quote {
    None,
    Single,
    Double,
}

/// One token of a directive: its name or an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Word {
    /// The raw text, including quotes.
    pub span: Span,
    pub quote: Quote,
    /// A backslash occurs inside, so [`Word::value`] must unescape.
    pub escaped: bool,
}

impl Word {
    /// The raw text between the quotes (or the whole word when unquoted).
    #[must_use]
    pub fn inner<'a>(&self, src: &'a str) -> &'a str {
        let raw = &src[self.span.range()];
        match self.quote {
            Quote::None => raw,
            Quote::Single | Quote::Double => &raw[1..raw.len() - 1],
        }
    }

    /// The span of the text between the quotes.
    #[must_use]
    pub fn inner_span(&self) -> Span {
        match self.quote {
            Quote::None => self.span,
            Quote::Single | Quote::Double => Span {
                start: self.span.start + 1,
                end: self.span.end - 1,
            },
        }
    }

    /// The value nginx sees: quotes removed and `\"`, `\'`, `\\`, `\t`, `\r`, `\n` unescaped
    /// (nginx keeps any other backslash pair as written).
    #[must_use]
    pub fn value<'a>(&self, src: &'a str) -> Cow<'a, str> {
        let inner = self.inner(src);
        if !self.escaped {
            return Cow::Borrowed(inner);
        }
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('"') => out.push('"'),
                Some('\'') => out.push('\''),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('n') => out.push('\n'),
                Some('\\') | None => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
        Cow::Owned(out)
    }

    /// Whether the unquoted, unescaped word is exactly `name` (directive names are case-sensitive).
    #[must_use]
    pub fn is(&self, src: &str, name: &str) -> bool {
        self.quote == Quote::None && !self.escaped && &src[self.span.range()] == name
    }
}

/// Arguments of one directive; the header directives have two, kept inline (a longer list, such
/// as `listen 443 ssl http2`, goes to the heap).
pub type Args = smallvec::SmallVec<[Word; 2]>;

/// `name args... ;` or `name args... { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    pub name: Word,
    pub args: Args,
    /// Boxed: most directives have none, and a rendered `nginx.conf` has hundreds of thousands.
    pub block: Option<Box<Block>>,
    /// From the first byte of the name to the `;` or the closing `}` inclusive.
    pub span: Span,
}

impl Directive {
    /// The directive name as written (names are never quoted in valid configs).
    #[must_use]
    pub fn name<'a>(&self, src: &'a str) -> &'a str {
        &src[self.name.span.range()]
    }

    /// The span of the head: name and arguments, without the block.
    #[must_use]
    pub fn head_span(&self) -> Span {
        let end = self.args.last().map_or(self.name.span.end, |w| w.span.end);
        Span {
            start: self.name.span.start,
            end,
        }
    }

    /// Child directives, empty for simple directives and opaque (Lua) blocks.
    #[must_use]
    pub fn children(&self) -> &[Directive] {
        match self.block.as_deref() {
            Some(Block {
                body: Body::Directives(d),
                ..
            }) => d,
            _ => &[],
        }
    }
}

/// `{ ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// From `{` to `}` inclusive.
    pub span: Span,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Directives(Vec<Directive>),
    /// The body of a `*_by_lua_block`: Lua code, not nginx directives.
    Opaque,
}

/// A `#` comment up to the end of its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Comment {
    pub span: Span,
}

/// Why a text is not valid nginx syntax.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxErrorKind {
    /// A `;`, `{` or `}` where nginx does not accept one.
    #[error("unexpected \"{0}\"")]
    Unexpected(char),
    /// A quoted word followed directly by another character.
    #[error("unexpected \"{0}\" after a quoted string; a space, \";\" or \"{{\" must follow")]
    UnexpectedAfterQuote(char),
    /// The text ended inside a directive.
    #[error("unexpected end of snippet, expecting \";\" or \"}}\"")]
    MissingSemicolon,
    /// The text ended inside a block.
    #[error("unexpected end of snippet, expecting \"}}\"")]
    UnclosedBlock,
    /// The text ended inside a quoted string.
    #[error("unexpected end of snippet inside a quoted string")]
    UnterminatedQuote,
    /// The text ended inside a `*_by_lua_block` body.
    #[error("unexpected end of snippet inside a Lua block")]
    UnterminatedLua,
    /// More nested blocks than the parser follows.
    #[error("blocks are nested more than {0} levels deep")]
    TooDeep(usize),
    /// The text contains a NUL byte, which nginx never accepts in a configuration.
    #[error("NUL byte in configuration text")]
    NulByte,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub span: Span,
    pub kind: SyntaxErrorKind,
}

/// The result of parsing: the directives that were recognised, all comments, and the syntax errors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub directives: Vec<Directive>,
    pub comments: Vec<Comment>,
    pub errors: Vec<SyntaxError>,
}
