//! Reading inputs: files, directories (recursive), standard input; YAML/JSON manifests or a
//! rendered `nginx.conf`.

use std::collections::HashSet;
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

/// A UTF-8 byte order mark. Editors hide it; it is not part of a YAML or JSON document, and
/// nginx reads it as part of the first directive's name (`unknown directive "\u{feff}events"`).
const BOM: &str = "\u{feff}";

/// Add a text to the workspace and read it.
pub fn add_text(ws: &mut Workspace, name: &str, text: &str, format: Format) {
    add_string(ws, name, text.to_string(), format);
}

/// Add an owned text (no copy) to the workspace and read it. A leading byte order mark is
/// dropped, so that columns count from the first character a reader sees.
pub fn add_string(ws: &mut Workspace, name: &str, text: String, format: Format) {
    add_owned(ws, name, text, format);
}

/// [`add_string`], returning the format the text was read as.
fn add_owned(ws: &mut Workspace, name: &str, mut text: String, format: Format) -> Format {
    if text.starts_with(BOM) {
        text.drain(..BOM.len());
    }
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
    format
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
    add_owned_bytes(ws, name, bytes, format);
}

/// [`add_vec`], returning the format the bytes were read as (`Auto` for a binary file).
fn add_owned_bytes(ws: &mut Workspace, name: &str, mut bytes: Vec<u8>, format: Format) -> Format {
    // Offsets in messages count from the start of the file, byte order mark included.
    let bom = if bytes.starts_with(BOM.as_bytes()) {
        bytes.drain(..BOM.len());
        BOM.len()
    } else {
        0
    };
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
                "a binary file (NUL byte at {}), not a Kubernetes manifest or an nginx.conf",
                at + bom
            ),
            help: Some(
                "lint YAML, JSON or nginx.conf files; nothing in this file was checked".into(),
            ),
            object: None,
        });
        return Format::Auto;
    }
    match String::from_utf8(bytes) {
        Ok(text) => add_owned(ws, name, text, format),
        Err(e) => {
            let e_valid = e.utf8_error();
            let bytes = e.into_bytes();
            let text = String::from_utf8_lossy(&bytes);
            let format = match format {
                Format::Auto => sniff(&text),
                f => f,
            };
            if format == Format::Conf {
                return add_owned(ws, name, text.into_owned(), Format::Conf);
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
                message: format!(
                    "not valid UTF-8 (byte {}); YAML and JSON must be UTF-8",
                    at + bom
                ),
                help: Some("save the file as UTF-8; nothing in this file was checked".into()),
                object: None,
            });
            format
        }
    }
}

/// An input that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The path does not exist or cannot be read. The message holds the path; the reason is the
    /// source, so that a report of the whole chain (`{:#}`) says it once.
    #[error("cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: IoCause,
    },
}

impl InputError {
    fn io(path: &Path, error: std::io::Error) -> Self {
        InputError::Io {
            path: path.display().to_string(),
            source: IoCause(error),
        }
    }
}

/// Why a path could not be read, in the user's words: the operating system's reason, lowercase,
/// without its error number (`no such file or directory`).
#[derive(Debug, thiserror::Error)]
#[error("{}", describe_io(.0))]
pub struct IoCause(pub std::io::Error);

fn describe_io(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => &text,
    };
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
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

/// Something reading the inputs noticed that is neither a finding nor an input error: `lint`
/// prints it on standard error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A `.conf` file found in a directory that is not an nginx configuration (a Fluent Bit,
    /// Redis or supervisord file): not read, not counted.
    NotNginx(PathBuf),
    /// A symbolic link found in a directory that leads back to a directory being read, or to
    /// itself: not followed.
    SymlinkLoop(PathBuf),
    /// A directory named on the command line with no manifest or nginx configuration below it.
    EmptyDirectory(PathBuf),
    /// An nginx configuration that starts with a UTF-8 byte order mark, which nginx refuses (it
    /// reads the mark as part of the first directive's name). The file is checked without it.
    ConfByteOrderMark(String),
}

impl Notice {
    /// Whether the user should act on it (the others say what was skipped, and why).
    #[must_use]
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            Notice::EmptyDirectory(_) | Notice::ConfByteOrderMark(_)
        )
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::NotNginx(path) => {
                write!(f, "skipped {}: not an nginx configuration", path.display())
            }
            Notice::SymlinkLoop(path) => {
                write!(f, "skipped {}: a symbolic link loop", path.display())
            }
            Notice::EmptyDirectory(path) => write!(
                f,
                "nothing to check in {}: no Kubernetes manifest (.yaml, .yml, .json) or nginx configuration (.conf) below it",
                path.display()
            ),
            Notice::ConfByteOrderMark(name) => write!(
                f,
                "{name} starts with a UTF-8 byte order mark: nginx refuses it (`unknown directive`); save the file without it"
            ),
        }
    }
}

/// Directive names that only nginx configurations use (with nginx's `;` and `{}` syntax): a
/// `.conf` file found in a directory is read as nginx only when one stands at its top level.
/// `include`, `user`, `pid` and the like are left out: other formats use them too.
fn is_nginx_directive(name: &str) -> bool {
    const PREFIXES: [&str; 11] = [
        "proxy_", "grpc_", "fastcgi_", "uwsgi_", "scgi_", "ssl_", "more_", "lua_", "gzip",
        "limit_", "client_",
    ];
    const NAMES: [&str; 42] = [
        "http",
        "events",
        "stream",
        "mail",
        "server",
        "location",
        "upstream",
        "map",
        "geo",
        "split_clients",
        "types",
        "limit_except",
        "worker_processes",
        "worker_connections",
        "worker_rlimit_nofile",
        "load_module",
        "listen",
        "server_name",
        "root",
        "alias",
        "try_files",
        "return",
        "rewrite",
        "add_header",
        "access_log",
        "error_log",
        "log_format",
        "sendfile",
        "tcp_nopush",
        "tcp_nodelay",
        "keepalive_timeout",
        "default_type",
        "error_page",
        "auth_request",
        "auth_basic",
        "real_ip_header",
        "set_real_ip_from",
        "server_tokens",
        "underscores_in_headers",
        "large_client_header_buffers",
        "server_names_hash_bucket_size",
        "types_hash_max_size",
    ];
    NAMES.contains(&name)
        || PREFIXES.iter().any(|p| name.starts_with(p))
        || name.ends_with("_by_lua_block")
}

/// Whether a text found in a directory walk is an nginx configuration (a whole `nginx.conf` or
/// a fragment of one): it has no INI `[section]` line, and one of its complete top-level
/// directives (ended by `;` or a block) is one only nginx has ([`is_nginx_directive`]). A
/// Fluent Bit, supervisord or php-fpm file has sections; a Redis, Mosquitto or ntp file has no
/// `;`, so it ends inside its first directive and has no complete one. An nginx configuration
/// with a syntax error further down is still read, so the error is reported.
#[must_use]
pub fn is_nginx_conf(text: &str) -> bool {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let section = |l: &str| {
        let l = l.trim();
        l.len() > 2 && l.starts_with('[') && l.ends_with(']')
    };
    if text.lines().any(section) {
        return false;
    }
    let config = crate::nginx::parser::parse_parallel(text);
    config
        .directives
        .iter()
        .any(|d| is_nginx_directive(d.name(text)))
}

/// Reading the paths of one run: what was read already (by canonical path), in order.
struct Reader<'a> {
    ws: &'a mut Workspace,
    format: Format,
    /// Files read, canonical: a file named twice, or reached twice, is read once.
    files: HashSet<PathBuf>,
    /// Directories walked, canonical.
    dirs: HashSet<PathBuf>,
    /// `.conf` files a walk found not to be nginx, canonical: said once.
    skipped: HashSet<PathBuf>,
    notices: Vec<Notice>,
}

/// `ELOOP`: a path has too many levels of symbolic links (a link to itself or a loop of links).
const ELOOP: i32 = if cfg!(any(target_os = "linux", target_os = "android")) {
    40
} else {
    62
};

impl Reader<'_> {
    /// Read a path named by the user: a file is read whatever its name; a directory is walked.
    fn named(&mut self, path: &Path) -> Result<(), InputError> {
        let io = |e| InputError::io(path, e);
        let meta = std::fs::metadata(path).map_err(io)?;
        let canonical = std::fs::canonicalize(path).map_err(io)?;
        if !meta.is_dir() {
            if self.files.insert(canonical) {
                self.read(path, false)?;
            }
            return Ok(());
        }
        if !self.dirs.insert(canonical.clone()) {
            return Ok(());
        }
        let mut found = 0;
        self.walk(path, &mut vec![canonical], &mut found)?;
        if found == 0 {
            self.notices
                .push(Notice::EmptyDirectory(path.to_path_buf()));
        }
        Ok(())
    }

    /// Read the manifests and nginx configurations below `dir` (whose canonical path ends
    /// `ancestors`) in name order, following symbolic links but no loop, and count them (read
    /// now or before) in `found`.
    fn walk(
        &mut self,
        dir: &Path,
        ancestors: &mut Vec<PathBuf>,
        found: &mut usize,
    ) -> Result<(), InputError> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| InputError::io(dir, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') || name == "target" || name == "node_modules" {
                continue;
            }
            // Follows symbolic links; a dangling link with a manifest's name fails when read.
            let meta = match std::fs::metadata(&p) {
                Ok(meta) => Some(meta),
                Err(e) if e.raw_os_error() == Some(ELOOP) => {
                    self.notices.push(Notice::SymlinkLoop(p));
                    continue;
                }
                Err(_) => None,
            };
            if meta.as_ref().is_some_and(std::fs::Metadata::is_dir) {
                let canonical = std::fs::canonicalize(&p).map_err(|e| InputError::io(&p, e))?;
                if ancestors.contains(&canonical) {
                    self.notices.push(Notice::SymlinkLoop(p));
                } else if self.dirs.insert(canonical.clone()) {
                    ancestors.push(canonical);
                    self.walk(&p, ancestors, found)?;
                    ancestors.pop();
                }
                continue;
            }
            if by_extension(&p) == Format::Auto {
                continue;
            }
            let canonical = std::fs::canonicalize(&p).map_err(|e| InputError::io(&p, e))?;
            if self.files.contains(&canonical) {
                *found += 1;
            } else if !self.skipped.contains(&canonical) {
                if self.read(&p, true)? {
                    self.files.insert(canonical);
                    *found += 1;
                } else {
                    self.skipped.insert(canonical);
                }
            }
        }
        Ok(())
    }

    /// Read one file; `false` when a `.conf` file found by a walk is not an nginx configuration
    /// (then it is skipped, with a notice).
    fn read(&mut self, path: &Path, walked: bool) -> Result<bool, InputError> {
        let bytes = read_file(path).map_err(|e| InputError::io(path, e))?;
        let format = match self.format {
            Format::Auto => by_extension(path),
            other => other,
        };
        if walked
            && self.format == Format::Auto
            && format == Format::Conf
            && !is_nginx_conf(&String::from_utf8_lossy(&bytes))
        {
            self.notices.push(Notice::NotNginx(path.to_path_buf()));
            return Ok(false);
        }
        self.add(&path.display().to_string(), bytes, format);
        Ok(true)
    }

    fn add(&mut self, name: &str, bytes: Vec<u8>, format: Format) {
        let bom = bytes.starts_with(BOM.as_bytes());
        if add_owned_bytes(self.ws, name, bytes, format) == Format::Conf && bom {
            self.notices
                .push(Notice::ConfByteOrderMark(name.to_string()));
        }
    }
}

/// Read paths (files or directories; `-` is standard input) into a workspace, in the order given.
///
/// A directory is walked in name order for `*.yaml`, `*.yml`, `*.json` and the `*.conf` files
/// that are nginx configurations ([`is_nginx_conf`]); a file named by the user is read whatever
/// its name. Each file is read once, however many times it is named or reached (paths are
/// compared canonical: symbolic links resolved), and a symbolic link back into the walk is not
/// followed. Returns what the user should hear about besides findings and input errors.
pub fn load_paths(
    ws: &mut Workspace,
    paths: &[PathBuf],
    format: Format,
) -> Result<Vec<Notice>, InputError> {
    let mut reader = Reader {
        ws,
        format,
        files: HashSet::new(),
        dirs: HashSet::new(),
        skipped: HashSet::new(),
        notices: Vec::new(),
    };
    for path in paths {
        if path.as_os_str() == "-" {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| InputError::io(Path::new("standard input"), e))?;
            reader.add(STDIN_NAME, buf, format);
            continue;
        }
        reader.named(path)?;
    }
    Ok(reader.notices)
}

/// The name standard input goes by in reports.
pub const STDIN_NAME: &str = "<stdin>";

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
    fn only_nginx_configurations_are_nginx() {
        let nginx = [
            "user nginx;\nworker_processes auto;\nevents { worker_connections 1024; }\nhttp { include mime.types; server { listen 80; } }\n",
            "server {\n  listen 80;\n  server_name a.example.com;\n  location / { proxy_pass http://a; }\n}\n",
            "location /api/ {\n  proxy_set_header X-Real-IP $remote_addr;\n  proxy_pass http://api;\n}\n",
            "upstream api { server 10.0.0.1:8080; }\nmap $http_upgrade $connection_upgrade { default upgrade; '' close; }\n",
            "\u{feff}# with a byte order mark\nserver { listen 80; }\n",
            // A real configuration with a mistake further down is still nginx (and linted).
            "http {\n  server {\n    listen 80\n    location / { proxy_pass http://a; }\n  }\n",
        ];
        for text in nginx {
            assert!(is_nginx_conf(text), "{text}");
        }
        let other = [
            // Fluent Bit
            "[SERVICE]\n    Flush        5\n    Log_Level    info\n\n[INPUT]\n    Name cpu\n",
            // Redis: `key value` lines and no `;`
            "bind 127.0.0.1 -::1\nprotected-mode yes\nport 6379\ninclude /etc/redis/local.conf\n",
            // supervisord
            "[supervisord]\nnodaemon=true\n\n[program:web]\ncommand=/usr/bin/web ; the server\n",
            // php-fpm: `;` comments, and a `listen` key
            "[www]\n;comment\nlisten = /run/php.sock\n;pm = dynamic\n",
            // BIND: `;` terminated, but no nginx directive
            "options { directory \"/var/cache/bind\"; };\n",
            // ntp/chrony: `server` lines without `;` never end a directive
            "server 0.pool.ntp.org iburst\nserver 1.pool.ntp.org iburst\ndriftfile /var/lib/ntp\n",
            // nothing at all
            "# only a comment\n",
            "",
        ];
        for text in other {
            assert!(!is_nginx_conf(text), "{text}");
        }
    }

    #[test]
    fn a_byte_order_mark_is_not_read() {
        let mut ws = Workspace::new();
        add_bytes(
            &mut ws,
            "a.yaml",
            b"\xef\xbb\xbfkind: ConfigMap\n",
            Format::Auto,
        );
        assert_eq!(
            ws.sources.get(crate::source::FileId(0)).text.as_str(),
            "kind: ConfigMap\n"
        );
        // An offset in a message still counts the mark, as the file on disk does.
        add_bytes(&mut ws, "b.yaml", b"\xef\xbb\xbfa: \xff\n", Format::Yaml);
        assert!(
            ws.load_errors[0].message.contains("(byte 6)"),
            "{:?}",
            ws.load_errors
        );
    }

    #[test]
    fn io_reasons_read_as_words() {
        let e = std::fs::read("/nonexistent/x.yaml").unwrap_err();
        let e = InputError::io(Path::new("/nonexistent/x.yaml"), e);
        assert_eq!(e.to_string(), "cannot read /nonexistent/x.yaml");
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert_eq!(cause, "no such file or directory");
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
