//! Edits: a rule's "remove this directive" made into byte-exact edits of the file the snippet was
//! read from, and edits applied to texts. The re-lint loop behind `lint --fix` is the `fix` module.
//!
//! A rule attaches a [`Fix`] ([`Fix::remove_directive`]) whose one edit deletes the directive's
//! bytes as the snippet's [`SourceMap`] places them. [`resolve`] then looks at how the value is written in the file and
//! widens that to what a person would delete:
//!
//! - a line of a `|` or `>` block scalar (any chomping or indentation indicator), or of an
//!   `nginx.conf`: the whole line of the file, its line break included (`\r\n` too);
//! - a line of a double-quoted scalar or a JSON string: the escaped text and its `\n`;
//! - a continuation line of a quoted or plain scalar written over several lines: that line;
//! - a directive that shares its line with others: the directive and the blanks after it;
//! - the only directive of a quoted or plain value: the whole value becomes `""`.
//!
//! Every edit is checked: the bytes it removes must decode to exactly the text removed from the
//! snippet. When they do not (an escape the check does not know, a directive split over lines of
//! a folded scalar), the finding gets no fix rather than a wrong one. A value that a YAML alias
//! copies into other places (`&snip` ... `*snip`, or a `<<: *ann` merge) is changed everywhere
//! by one edit: such a fix is [`Applicability::Unsafe`] and says so.

use std::collections::HashMap;

use crate::diagnostic::{Applicability, Diagnostic, Edit, Fix};
use crate::model::{Object, Text, Workspace};
use crate::source::{FileId, SourceMap, Span};

/// How a value is written in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// The value is the file's text itself (an `nginx.conf`), or a one-line plain scalar.
    Verbatim,
    Literal,
    Folded,
    Double,
    Single,
    Plain,
}

/// A value of a file: its decoded text and how it maps into the file.
struct Value<'a> {
    src: &'a str,
    map: &'a SourceMap,
    /// The file is an `nginx.conf`, not YAML: no quoting to keep.
    conf: bool,
    /// Other entries (of this object or others) read the same text through a YAML alias.
    shared: usize,
}

fn style(raw: &str, value: &Value<'_>) -> Style {
    let vs = value.map.value_span;
    let text = &raw[vs.range()];
    if value.conf {
        return Style::Verbatim;
    }
    if let Some((folded, _)) = block_header(raw, vs.start as usize) {
        return if folded {
            Style::Folded
        } else {
            Style::Literal
        };
    }
    if text == value.src {
        return Style::Verbatim;
    }
    match text.as_bytes().first() {
        Some(b'"') => Style::Double,
        Some(b'\'') => Style::Single,
        _ => Style::Plain,
    }
}

/// Whether the value whose first content byte is at `start` is a block scalar: the last line
/// before it that is not blank ends with a header (`|`, `>-`, `|2+`..., then maybe a comment).
/// `Some((folded, indentation indicator))`. (The reader places a block scalar at its content.)
fn block_header(raw: &str, start: usize) -> Option<(bool, bool)> {
    let mut end = raw[..start].rfind('\n')?;
    loop {
        let line_start = raw[..end].rfind('\n').map_or(0, |i| i + 1);
        let line = raw[line_start..end].trim_end_matches('\r');
        if line.trim().is_empty() {
            end = line_start.checked_sub(1)?;
            continue;
        }
        let line = match line.find(" #") {
            Some(at) => &line[..at],
            None => line,
        };
        let token = line.trim_end().rsplit([' ', '\t']).next()?;
        let token = token.rsplit(':').next()?;
        let mut chars = token.chars();
        let folded = match chars.next()? {
            '|' => false,
            '>' => true,
            _ => return None,
        };
        let rest = chars.as_str();
        return rest
            .chars()
            .all(|c| c.is_ascii_digit() || c == '-' || c == '+')
            .then_some((folded, rest.contains(|c: char| c.is_ascii_digit())));
    }
}

/// Length in the file of the escape starting a double-quoted scalar's `\`, if known.
fn escape_len(raw: &[u8]) -> Option<usize> {
    match raw.get(1)? {
        b'x' => Some(4),
        b'u' => Some(6),
        b'U' => Some(10),
        b'0' | b'a' | b'b' | b't' | b'\t' | b'n' | b'v' | b'f' | b'r' | b'e' | b' ' | b'"'
        | b'/' | b'\\' | b'N' | b'_' | b'L' | b'P' => Some(2),
        _ => None,
    }
}

/// Decode a piece of a double-quoted scalar that holds no line break.
fn unescape_double(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let esc = &rest[at..];
        let len = escape_len(esc.as_bytes())?;
        let c = match esc.as_bytes()[1] {
            b'0' => '\0',
            b'a' => '\u{7}',
            b'b' => '\u{8}',
            b't' | b'\t' => '\t',
            b'n' => '\n',
            b'v' => '\u{b}',
            b'f' => '\u{c}',
            b'r' => '\r',
            b'e' => '\u{1b}',
            b'N' => '\u{85}',
            b'_' => '\u{a0}',
            b'L' => '\u{2028}',
            b'P' => '\u{2029}',
            b'x' | b'u' | b'U' => char::from_u32(u32::from_str_radix(esc.get(2..len)?, 16).ok()?)?,
            other => char::from(other),
        };
        out.push(c);
        rest = &esc[len..];
    }
    out.push_str(rest);
    Some(out)
}

/// Decode a piece of a scalar in `style` that holds no line break.
fn decode(style: Style, raw: &str) -> Option<String> {
    match style {
        Style::Double => unescape_double(raw),
        Style::Single => Some(raw.replace("''", "'")),
        _ => Some(raw.to_string()),
    }
}

/// The bytes of the file that hold the decoded bytes `a..b`, when they decode to exactly those.
fn raw_range(
    raw: &str,
    value: &Value<'_>,
    style: Style,
    a: usize,
    b: usize,
) -> Option<(usize, usize)> {
    let src = value.src;
    if a >= b || b > src.len() || !src.is_char_boundary(a) || !src.is_char_boundary(b) {
        return None;
    }
    let last = src[a..b].chars().next_back()?;
    let last_at = b - last.len_utf8();
    let start = value.map.map_offset(a as u32) as usize;
    let last_raw = value.map.map_offset(last_at as u32) as usize;
    let bytes = raw.as_bytes();
    let last_len = match style {
        Style::Double if bytes.get(last_raw) == Some(&b'\\') => escape_len(&bytes[last_raw..])?,
        Style::Single if last == '\'' && raw[last_raw..].starts_with("''") => 2,
        _ => last.len_utf8(),
    };
    let end = last_raw + last_len;
    let vs = value.map.value_span.range();
    if start > end || start < vs.start || end > vs.end || !raw.is_char_boundary(end) {
        return None;
    }
    let piece = raw.get(start..end)?;
    if style != Style::Verbatim && piece.contains(['\n', '\r']) {
        return None;
    }
    (decode(style, piece)? == src[a..b]).then_some((start, end))
}

/// Whether deleting the block scalar line `rs..end` (indented by `indent`) keeps the block's
/// indentation: without an indentation indicator the first line with content sets it, and a
/// more indented line after it would set a larger one, which the lines after that break. So
/// the first line goes only when no line of the block is more indented (then no combination of
/// deleted lines can change the indentation either).
fn keeps_indentation(raw: &str, rs: usize, indent: usize, end: usize) -> bool {
    match block_header(raw, rs) {
        // Not the first line, or the header says the indentation.
        None | Some((_, true)) => true,
        Some((_, false)) => {
            for line in raw[end..].split('\n').map(|l| l.trim_end_matches('\r')) {
                if line.trim().is_empty() {
                    continue;
                }
                let line_indent = line.len() - line.trim_start_matches(' ').len();
                if line_indent < indent {
                    // The block ended.
                    return true;
                }
                if line_indent > indent {
                    return false;
                }
            }
            true
        }
    }
}

/// The bytes of a `|` block scalar that hold a directive written over several lines (`a..b` of
/// the value): each of its lines verbatim, and between them only line breaks and indentation,
/// as many line breaks as the value has.
fn literal_lines(raw: &str, value: &Value<'_>, a: usize, b: usize) -> Option<(usize, usize)> {
    let mut first = None;
    let mut last: Option<usize> = None;
    let mut breaks = 0;
    let mut at = a;
    for piece in value.src[a..b].split('\n') {
        let end = at + piece.len();
        // Blanks at the start of a line are the block's indentation as much as the value's.
        let text_at = end - piece.trim_start_matches(' ').len();
        if text_at == end {
            breaks += 1;
        } else {
            let (rs, re) = raw_range(raw, value, Style::Literal, text_at, end)?;
            if let Some(previous) = last {
                let between = raw.get(previous..rs)?;
                if !between.chars().all(|c| matches!(c, '\n' | '\r' | ' '))
                    || between.matches('\n').count() != breaks
                {
                    return None;
                }
            }
            first.get_or_insert(rs);
            last = Some(re);
            breaks = 1;
        }
        at = end + 1;
    }
    Some((first?, last?))
}

/// Whether `s` is blanks, optionally followed by an nginx comment.
fn blank_or_comment(s: &str) -> bool {
    let t = s.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// The edit that removes the directive at decoded `a..b` from `value`, if one is exact.
fn removal(raw: &str, value: &Value<'_>, a: usize, b: usize) -> Option<(Span, String)> {
    let src = value.src;
    let style = style(raw, value);
    let vs = value.map.value_span.range();
    let ls = src[..a].rfind('\n').map_or(0, |i| i + 1);
    let le = src[b..].find('\n').map_or(src.len(), |i| b + i);
    let alone = src[ls..a].trim().is_empty() && blank_or_comment(&src[b..le]);
    let rest_empty = alone && src[..ls].trim().is_empty() && src[le..].trim().is_empty();
    let del = |s: usize, e: usize| Some((Span::new(s, e), String::new()));

    // The only directive of a quoted or plain value: the value becomes empty.
    if rest_empty
        && !value.conf
        && matches!(
            style,
            Style::Double | Style::Single | Style::Plain | Style::Verbatim
        )
    {
        let empty = if style == Style::Single { "''" } else { "\"\"" };
        return Some((Span::new(vs.start, vs.end), empty.to_string()));
    }

    let (da, db) = match raw_range(raw, value, style, a, b) {
        Some(r) => r,
        None if style == Style::Literal && src[a..b].contains('\n') => {
            literal_lines(raw, value, a, b)?
        }
        None => return None,
    };
    // The directive alone on its line of the file.
    let rs = raw[..da].rfind('\n').map_or(0, |i| i + 1);
    let rle = raw[db..].find('\n').map_or(raw.len(), |i| db + i);
    let before = &raw[rs..da];
    let after = &raw[db..rle];
    let comment_ok = matches!(style, Style::Verbatim | Style::Literal);
    let after_ok = if comment_ok {
        blank_or_comment(after)
    } else {
        after.trim().is_empty()
    };
    let whole_line_inside = match style {
        // A line of content (the reader places the value at its first content byte).
        Style::Literal | Style::Folded => rs >= raw[..vs.start].rfind('\n').map_or(0, |i| i + 1),
        Style::Verbatim => rs >= vs.start && (value.conf || rle < vs.end),
        // A continuation line: not the key's line, not the closing quote's.
        Style::Double | Style::Single | Style::Plain => rs > vs.start && rle < vs.end,
    };
    if before.chars().all(|c| c == ' ' || c == '\t') && after_ok && whole_line_inside {
        let end = if rle < raw.len() { rle + 1 } else { rle };
        if matches!(style, Style::Literal | Style::Folded)
            && !keeps_indentation(raw, rs, before.len(), end)
        {
            return None;
        }
        return del(rs, end);
    }
    // The decoded line with its line break (a `\n` escape), for quoted scalars.
    if alone && matches!(style, Style::Double | Style::Verbatim) {
        let range = if le < src.len() {
            Some((ls, le + 1))
        } else if ls > 0 {
            Some((ls - 1, le))
        } else {
            None
        };
        if let Some((s, e)) = range
            && let Some((rs, re)) = raw_range(raw, value, style, s, e)
        {
            return del(rs, re);
        }
    }
    // The directive and the blanks after it (or before it, at the end of a line).
    let blanks_after = src[b..le].len() - src[b..le].trim_start_matches([' ', '\t']).len();
    let blanks_before = src[ls..a].len() - src[ls..a].trim_end_matches([' ', '\t']).len();
    let candidates = [(a, b + blanks_after), (a - blanks_before, b), (a, b)];
    for (s, e) in candidates {
        if let Some((rs, re)) = raw_range(raw, value, style, s, e) {
            // A plain scalar must not start with an indicator once its head is gone.
            let plain = style == Style::Plain || (style == Style::Verbatim && !value.conf);
            if plain
                && rs == vs.start
                && raw[re..vs.end]
                    .chars()
                    .next()
                    .is_none_or(|c| "-?:,[]{}#&*!|>'\"%@` \t".contains(c))
            {
                continue;
            }
            return del(rs, re);
        }
    }
    None
}

/// The lines of a block mapping entry `key: value` (with their line breaks) when the entry has
/// them to itself: its key starts its line, and its value ends on that line or is a block scalar
/// whose lines are all indented more than the key. None in JSON and flow mappings, where removing
/// an entry means editing commas.
#[must_use]
pub fn entry_lines(text: &str, key: Span, value: Span) -> Option<Span> {
    let k = key.range();
    if text.trim_start().starts_with(['{', '[']) {
        return None;
    }
    let start = text[..k.start].rfind('\n').map_or(0, |i| i + 1);
    if text[..start].trim_end().ends_with([',', '{', '[']) {
        return None;
    }
    let indent = &text[start..k.start];
    if !indent.bytes().all(|b| b == b' ') {
        return None;
    }
    let end = text[k.end..].find('\n').map_or(text.len(), |i| k.end + i);
    let next_line = if end < text.len() { end + 1 } else { end };
    let rest = text[k.end..end].trim_end_matches('\r').strip_prefix(':')?;
    let head = rest.split(" #").next().unwrap_or(rest).trim();
    let header = head.starts_with(['|', '>'])
        && head[1..]
            .chars()
            .all(|c| c.is_ascii_digit() || c == '-' || c == '+');
    let v = value.range();
    if v.start < k.end {
        return None;
    }
    if !header {
        // The value is on the key's line, and nothing but a comment follows it.
        if v.start > end || v.end > end {
            return None;
        }
        let after = text[v.end..end].trim_end_matches('\r').trim();
        if !(after.is_empty() || after.starts_with('#')) {
            return None;
        }
        return Some(Span::new(start, next_line));
    }
    // A block scalar: its lines, up to the next one at the key's indentation or less.
    let mut at = next_line;
    while at < text.len() {
        let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        let line = text[at..line_end].trim_end_matches('\r');
        let ind = line.len() - line.trim_start_matches(' ').len();
        if !line.trim().is_empty() && ind <= indent.len() {
            break;
        }
        at = if line_end < text.len() {
            line_end + 1
        } else {
            line_end
        };
    }
    Some(Span::new(start, at))
}

/// Every string value read from the files of a workspace, by file, for [`resolve`].
struct Values<'w> {
    by_file: HashMap<FileId, Vec<&'w Text>>,
    /// Each entry by the place of its key: its value's span, and how many entries read the key
    /// there (more than one through an alias or a merge).
    keys: HashMap<(FileId, Span), (Span, usize)>,
    /// How many entries read each value span.
    readers: HashMap<(FileId, Span), usize>,
    confs: Vec<(FileId, SourceMap)>,
}

impl<'w> Values<'w> {
    fn new(ws: &'w Workspace) -> Self {
        let mut by_file: HashMap<FileId, Vec<&Text>> = HashMap::new();
        let mut readers: HashMap<(FileId, Span), usize> = HashMap::new();
        let mut keys: HashMap<(FileId, Span), (Span, usize)> = HashMap::new();
        for o in &ws.objects {
            let data = match o {
                Object::ConfigMap(cm) => cm.data.as_slice(),
                _ => &[],
            };
            for e in o.meta().annotations.iter().chain(data) {
                let t = &e.value;
                if t.map.file == FileId::DETACHED {
                    continue;
                }
                if e.key_location.file == t.map.file {
                    keys.entry((t.map.file, e.key_location.span))
                        .or_insert((t.map.value_span, 0))
                        .1 += 1;
                }
                let key = (t.map.file, t.map.value_span);
                let n = readers.entry(key).or_default();
                *n += 1;
                if *n == 1 {
                    by_file.entry(t.map.file).or_default().push(t);
                }
            }
        }
        let confs = ws
            .confs
            .iter()
            .map(|&f| {
                (
                    f,
                    SourceMap::identity(f, 0, ws.sources.get(f).text.len() as u32),
                )
            })
            .collect();
        Self {
            by_file,
            keys,
            readers,
            confs,
        }
    }
}

/// Make each finding's fix exact for the file it edits, or drop it (see the module docs).
/// Fixes of values that other objects read through an alias become unsafe, with a note.
pub fn resolve(ws: &Workspace, diags: &mut [Diagnostic]) {
    if diags.iter().all(|d| d.fix.is_none()) {
        return;
    }
    let values = Values::new(ws);
    for d in diags.iter_mut() {
        let Some(fix) = d.fix.take() else { continue };
        if let Some((fix, shared)) = resolve_one(ws, &values, fix) {
            if shared > 1 {
                d.notes.push(format!(
                    "the snippet is one YAML anchor that {shared} annotations or keys read (an alias `*name` or a `<<:` merge): the fix changes every one of them, so it is unsafe"
                ));
            }
            d.fix = Some(fix);
        }
    }
}

fn resolve_one(ws: &Workspace, values: &Values<'_>, mut fix: Fix) -> Option<(Fix, usize)> {
    let [edit] = fix.edits.as_slice() else {
        return None;
    };
    if !edit.replacement.is_empty() || (edit.file.0 as usize) >= ws.sources.len() {
        return None;
    }
    let raw = ws.sources.get(edit.file).text.as_str();
    // A key of the `proxy-set-headers` ConfigMap: the entry goes, line and all.
    if let Some(&(value_span, shared)) = values.keys.get(&(edit.file, edit.span)) {
        let span = entry_lines(raw, edit.span, value_span)?;
        if shared > 1 {
            fix.applicability = Applicability::Unsafe;
        }
        fix.edits = vec![Edit {
            file: edit.file,
            span,
            replacement: String::new(),
        }];
        return Some((fix, shared));
    }
    let value = if let Some((_, map)) = values.confs.iter().find(|(f, _)| *f == edit.file) {
        Value {
            src: raw,
            map,
            conf: true,
            shared: 1,
        }
    } else {
        let text = values
            .by_file
            .get(&edit.file)?
            .iter()
            .filter(|t| {
                t.map.value_span.start <= edit.span.start && edit.span.end <= t.map.value_span.end
            })
            .min_by_key(|t| t.map.value_span.len())?;
        // A value that is a whole text of its own was received from the API server (`audit`),
        // not read from a manifest: there is no file to fix.
        if text.map.value_span == Span::new(0, raw.len()) {
            return None;
        }
        Value {
            src: &text.value,
            map: &text.map,
            conf: false,
            shared: values
                .readers
                .get(&(edit.file, text.map.value_span))
                .copied()
                .unwrap_or(1),
        }
    };
    let a = value.map.unmap_offset(edit.span.start)? as usize;
    let b = value.map.unmap_offset(edit.span.end.checked_sub(1)?)? as usize + 1;
    if !value.src.get(a..b)?.ends_with(';') {
        return None;
    }
    let (span, replacement) = removal(raw, &value, a, b)?;
    let shared = value.shared;
    if shared > 1 {
        fix.applicability = Applicability::Unsafe;
    }
    fix.edits = vec![Edit {
        file: edit.file,
        span,
        replacement,
    }];
    Some((fix, shared))
}

/// Apply edits to `text`: identical edits once, an edit that overlaps one before it is left out
/// (the next round of [`run`] makes it again if it still applies). Returns the new text and, for
/// each edit, whether it (or one identical to it) was applied.
#[must_use]
pub fn apply(text: &str, edits: &[&Edit]) -> (String, Vec<bool>) {
    let mut order: Vec<usize> = (0..edits.len()).collect();
    order.sort_by_key(|&i| (edits[i].span.start, edits[i].span.end));
    let mut applied = vec![false; edits.len()];
    let mut out = String::with_capacity(text.len());
    let mut at = 0usize;
    let mut last: Option<&Edit> = None;
    for i in order {
        let e = edits[i];
        if last.is_some_and(|l| l.span == e.span && l.replacement == e.replacement) {
            applied[i] = true;
            continue;
        }
        let r = e.span.range();
        if r.start < at
            || r.end > text.len()
            || !text.is_char_boundary(r.start)
            || !text.is_char_boundary(r.end)
        {
            continue;
        }
        out.push_str(&text[at..r.start]);
        out.push_str(&e.replacement);
        at = r.end;
        applied[i] = true;
        last = Some(e);
    }
    out.push_str(&text[at..]);
    (out, applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_apply_once_and_overlaps_wait() {
        let e = |s: usize, t: usize, r: &str| Edit {
            file: FileId(0),
            span: Span::new(s, t),
            replacement: r.into(),
        };
        let (a, b, c) = (e(1, 3, ""), e(1, 3, ""), e(2, 4, "x"));
        assert_eq!(
            apply("abcdef", &[&a, &b, &c]),
            ("adef".to_string(), vec![true, true, false])
        );
        assert_eq!(
            apply("abcdef", &[&e(5, 6, "Z"), &e(0, 1, "")]),
            ("bcdeZ".to_string(), vec![true, true])
        );
    }

    #[test]
    fn unknown_escapes_give_no_fix() {
        assert_eq!(unescape_double(r"a\qb"), None);
        assert_eq!(
            unescape_double(r"\u00e9\x41\n\\").as_deref(),
            Some("éA\n\\")
        );
    }
}
