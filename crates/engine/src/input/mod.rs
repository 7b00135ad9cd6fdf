//! Reading inputs: files, directories (recursive), standard input; YAML/JSON manifests or a
//! rendered `nginx.conf`.

use std::path::{Path, PathBuf};

use crate::model::Workspace;
use crate::source::SourceFile;

pub mod api;
pub mod manifests;

/// How to read a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// By file extension, else by content.
    #[default]
    Auto,
    /// YAML or JSON Kubernetes manifests.
    Yaml,
    /// A rendered `nginx.conf`.
    Conf,
}

/// Guess the format of a text without an extension: manifests start with a mapping key,
/// `---`, `{` or `[`; an `nginx.conf` does not.
#[must_use]
pub fn sniff(text: &str) -> Format {
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.starts_with("---") || l.starts_with('{') || l.starts_with('[') || l.starts_with("- ") {
            return Format::Yaml;
        }
        let first = l.split_whitespace().next().unwrap_or("");
        if first.ends_with(':') && !first.contains('$') {
            return Format::Yaml;
        }
        return Format::Conf;
    }
    Format::Yaml
}

fn by_extension(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml" | "json") => Format::Yaml,
        Some("conf") => Format::Conf,
        _ => Format::Auto,
    }
}

/// Add a text to the workspace and read it.
pub fn add_text(ws: &mut Workspace, name: &str, text: &str, format: Format) {
    add_string(ws, name, text.to_string(), format);
}

/// Add an owned text (no copy) to the workspace and read it.
pub fn add_string(ws: &mut Workspace, name: &str, text: String, format: Format) {
    let format = match format {
        Format::Auto => sniff(&text),
        f => f,
    };
    let file = ws.sources.add(SourceFile::new(name, text));
    ws.files += 1;
    match format {
        Format::Conf => ws.confs.push(file),
        Format::Yaml | Format::Auto => manifests::load(ws, file),
    }
}

/// Add raw bytes: invalid UTF-8 in a manifest is reported; an `nginx.conf` is read lossily, as
/// nginx itself does not care about encodings.
pub fn add_bytes(ws: &mut Workspace, name: &str, bytes: &[u8], format: Format) {
    add_vec(ws, name, bytes.to_vec(), format);
}

/// How far a NUL byte is looked for to call a file binary (as git does).
const BINARY_SNIFF_BYTES: usize = 8000;

/// [`add_bytes`] for an owned buffer: valid UTF-8 is kept without a copy. A binary file (a NUL
/// byte near its start) is an input error unless it was named as an `nginx.conf`.
pub fn add_vec(ws: &mut Workspace, name: &str, bytes: Vec<u8>, format: Format) {
    if format != Format::Conf
        && let Some(at) = memchr::memchr(0, &bytes[..bytes.len().min(BINARY_SNIFF_BYTES)])
    {
        let text = String::from_utf8_lossy(&bytes[..at]).into_owned();
        let end = text.len();
        let file = ws.sources.add(SourceFile::new(name, text));
        ws.files += 1;
        ws.load_errors.push(crate::model::LoadError {
            location: crate::source::Location {
                file,
                span: crate::source::Span::new(end, end),
            },
            message: format!(
                "a binary file (NUL byte at {at}), not a Kubernetes manifest or an nginx.conf"
            ),
            help: Some(
                "lint YAML, JSON or nginx.conf files; nothing in this file was checked".into(),
            ),
            object: None,
        });
        return;
    }
    match String::from_utf8(bytes) {
        Ok(text) => add_string(ws, name, text, format),
        Err(e) => {
            let e_valid = e.utf8_error();
            let bytes = e.into_bytes();
            let text = String::from_utf8_lossy(&bytes);
            let format = match format {
                Format::Auto => sniff(&text),
                f => f,
            };
            if format == Format::Conf {
                add_text(ws, name, &text, Format::Conf);
                return;
            }
            let file = ws.sources.add(SourceFile::new(name, text.into_owned()));
            ws.files += 1;
            let at = e_valid.valid_up_to();
            ws.load_errors.push(crate::model::LoadError {
                location: crate::source::Location {
                    file,
                    // The lossy text holds U+FFFD (3 bytes) where the bad byte was.
                    span: crate::source::Span::new(at, at + '\u{FFFD}'.len_utf8()),
                },
                message: format!("not valid UTF-8 (byte {at}); YAML and JSON must be UTF-8"),
                help: Some("save the file as UTF-8; nothing in this file was checked".into()),
                object: None,
            });
        }
    }
}

/// An input that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The path does not exist or cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Files at least this large are read by several threads at once.
const PARALLEL_READ_MIN: u64 = 4 << 20;

/// The bytes of a file, as [`std::fs::read`]. A large file (a rendered `nginx.conf`) is read in
/// parts by one thread each: most of the cost is the kernel mapping fresh pages for the copy, and
/// that goes as fast as there are cores.
fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let workers = crate::threads::workers();
    if len < PARALLEL_READ_MIN || workers < 2 || usize::try_from(len).is_err() {
        return std::fs::read(path);
    }
    let mut bytes = vec![0u8; len as usize];
    let part = bytes.len().div_ceil(workers);
    let read: std::io::Result<()> = std::thread::scope(|scope| {
        let file = &file;
        // A part whose thread could not be started fails the read (its buffer went with the
        // thread's closure), and the file is read again below on this thread.
        let parts: Vec<_> = bytes
            .chunks_mut(part)
            .enumerate()
            .map(|(i, chunk)| {
                let offset = (i * part) as u64;
                std::thread::Builder::new()
                    .name("read".into())
                    .spawn_scoped(scope, move || file.read_exact_at(chunk, offset))
            })
            .collect();
        parts
            .into_iter()
            .try_for_each(|h| h?.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    });
    // A file that shrank or grew while it was read, or a part not read, is read again, whole.
    if read.is_err() || file.read_at(&mut [0u8], len)? != 0 {
        return std::fs::read(path);
    }
    Ok(bytes)
}

/// Files below a directory that look like manifests or nginx configs, sorted.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let io = |source| InputError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if by_extension(&p) != Format::Auto {
            out.push(p);
        }
    }
    Ok(())
}

/// Read paths (files or directories; `-` is standard input) into a workspace.
pub fn load_paths(ws: &mut Workspace, paths: &[PathBuf], format: Format) -> Result<(), InputError> {
    for path in paths {
        if path.as_os_str() == "-" {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|source| {
                InputError::Io {
                    path: "<stdin>".into(),
                    source,
                }
            })?;
            add_vec(ws, "<stdin>", buf, format);
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|source| InputError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let files = if meta.is_dir() {
            let mut v = Vec::new();
            walk(path, &mut v)?;
            v
        } else {
            vec![path.clone()]
        };
        for f in files {
            let bytes = read_file(&f).map_err(|source| InputError::Io {
                path: f.display().to_string(),
                source,
            })?;
            let fmt = match format {
                Format::Auto => by_extension(&f),
                other => other,
            };
            add_vec(ws, &f.display().to_string(), bytes, fmt);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_file_reads_as_it_is() {
        let path = std::env::temp_dir().join(format!("sg-read-{}.conf", std::process::id()));
        let text: Vec<u8> = (0..(PARALLEL_READ_MIN as usize + 12_345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(&path, &text).unwrap();
        let read = read_file(&path);
        std::fs::remove_file(&path).unwrap();
        assert!(read.unwrap() == text);
        assert!(read_file(Path::new("/nonexistent/x.conf")).is_err());
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff("apiVersion: v1\nkind: X"), Format::Yaml);
        assert_eq!(sniff("# c\n---\n"), Format::Yaml);
        assert_eq!(sniff("{\"a\":1}"), Format::Yaml);
        assert_eq!(sniff("# nginx\nworker_processes 1;\nhttp {}"), Format::Conf);
        assert_eq!(sniff("proxy_set_header X $scheme;"), Format::Conf);
    }
}
