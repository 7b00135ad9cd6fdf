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
///
/// Displayed as in a snippet; [`SyntaxErrorKind::message`] words it for a whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyntaxErrorKind {
    /// A `;`, `{` or `}` where nginx does not accept one.
    Unexpected(char),
    /// A quoted word followed directly by another character.
    UnexpectedAfterQuote(char),
    /// The text ended inside a directive.
    MissingSemicolon,
    /// The text ended inside a block.
    UnclosedBlock,
    /// The text ended inside a quoted string.
    UnterminatedQuote,
    /// The text ended inside a `*_by_lua_block` body.
    UnterminatedLua,
    /// More nested blocks than the parser follows.
    TooDeep(usize),
    /// The text contains a NUL byte, which nginx never accepts in a configuration.
    NulByte,
}

/// What a parsed text is, for the wording of its syntax errors: nginx says "unexpected end of
/// file" of an `nginx.conf`, and a snippet is not a file of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    /// A snippet (an annotation or ConfigMap value) that the controller inserts into its file.
    Snippet,
    /// A whole configuration file (`nginx.conf`).
    File,
}

impl SyntaxErrorKind {
    /// The message for this error in a text of kind `text`.
    #[must_use]
    pub fn message(&self, text: TextKind) -> String {
        let end = match text {
            TextKind::Snippet => "unexpected end of snippet",
            TextKind::File => "unexpected end of file",
        };
        match self {
            SyntaxErrorKind::Unexpected(c) => format!("unexpected \"{c}\""),
            SyntaxErrorKind::UnexpectedAfterQuote(c) => format!(
                "unexpected \"{c}\" after a quoted string; a space, \";\" or \"{{\" must follow"
            ),
            SyntaxErrorKind::MissingSemicolon => format!("{end}, expecting \";\" or \"}}\""),
            SyntaxErrorKind::UnclosedBlock => format!("{end}, expecting \"}}\""),
            SyntaxErrorKind::UnterminatedQuote => format!("{end} inside a quoted string"),
            SyntaxErrorKind::UnterminatedLua => format!("{end} inside a Lua block"),
            SyntaxErrorKind::TooDeep(n) => format!("blocks are nested more than {n} levels deep"),
            SyntaxErrorKind::NulByte => "NUL byte in configuration text".to_string(),
        }
    }
}

impl std::fmt::Display for SyntaxErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message(TextKind::Snippet))
    }
}

impl std::error::Error for SyntaxErrorKind {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub span: Span,
    pub kind: SyntaxErrorKind,
    /// For a quoted string over several lines followed by a character that must not follow it:
    /// its opening quote, most likely the one left unbalanced.
    pub opened_at: Option<Span>,
}

/// The result of parsing: the directives that were recognised, all comments, and the syntax errors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub directives: Vec<Directive>,
    pub comments: Vec<Comment>,
    pub errors: Vec<SyntaxError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_a_whole_file_is_the_end_of_a_file() {
        let kind = SyntaxErrorKind::MissingSemicolon;
        assert_eq!(
            kind.to_string(),
            "unexpected end of snippet, expecting \";\" or \"}\""
        );
        assert_eq!(
            kind.message(TextKind::File),
            "unexpected end of file, expecting \";\" or \"}\""
        );
        for kind in [
            SyntaxErrorKind::UnclosedBlock,
            SyntaxErrorKind::UnterminatedQuote,
            SyntaxErrorKind::UnterminatedLua,
        ] {
            let file = kind.message(TextKind::File);
            assert!(file.starts_with("unexpected end of file"), "{file}");
            assert_eq!(kind.message(TextKind::Snippet), kind.to_string());
            assert!(!file.contains("snippet"), "{file}");
        }
        // Errors that are not about the end read the same in both.
        let kind = SyntaxErrorKind::Unexpected('}');
        assert_eq!(
            kind.message(TextKind::File),
            kind.message(TextKind::Snippet)
        );
    }
}
