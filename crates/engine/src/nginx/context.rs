//! Where nginx accepts a directive, how many arguments it takes, and whether it opens a block.
//!
//! The table covers the directives that appear in ingress-nginx snippets and rendered
//! configurations. A directive that is not in the table is not checked: controller images carry
//! many third-party modules, and reporting an "unknown directive" we merely do not know would be a
//! false positive. The one exception is a name that is a known directive written with capitals or
//! `-` (`PROXY_SET_HEADER`, `proxy-set-header`): nginx names are case-sensitive, lowercase and
//! joined by `_`, so nginx rejects it, whatever modules it carries. (Capitals alone prove nothing:
//! NAXSI's directives are `SecRulesEnabled`, `BasicRule`.) The messages repeat nginx's own wording
//! so that users recognise them.

use crate::nginx::ast::{Body, Config, Directive, Quote};
use crate::source::Span;

/// A configuration context, as a bit so that a directive can list several.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ctx(u16);

impl Ctx {
    pub const MAIN: Ctx = Ctx(1);
    pub const EVENTS: Ctx = Ctx(1 << 1);
    pub const HTTP: Ctx = Ctx(1 << 2);
    pub const SERVER: Ctx = Ctx(1 << 3);
    pub const LOCATION: Ctx = Ctx(1 << 4);
    /// `if` inside `server`.
    pub const SERVER_IF: Ctx = Ctx(1 << 5);
    /// `if` inside `location`.
    pub const LOCATION_IF: Ctx = Ctx(1 << 6);
    pub const LIMIT_EXCEPT: Ctx = Ctx(1 << 7);
    pub const UPSTREAM: Ctx = Ctx(1 << 8);
    pub const STREAM: Ctx = Ctx(1 << 9);
    pub const STREAM_SERVER: Ctx = Ctx(1 << 10);
    pub const STREAM_UPSTREAM: Ctx = Ctx(1 << 11);
    pub const MAIL: Ctx = Ctx(1 << 12);
    /// The body of `map`, `types`, `geo` and the like: key/value lines, not directives.
    pub const DATA: Ctx = Ctx(1 << 13);

    const fn or(self, other: Ctx) -> Ctx {
        Ctx(self.0 | other.0)
    }

    #[must_use]
    pub fn contains(self, other: Ctx) -> bool {
        self.0 & other.0 == other.0
    }

    /// Human name, as used in messages.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Ctx::MAIN => "main",
            Ctx::EVENTS => "events",
            Ctx::HTTP => "http",
            Ctx::SERVER => "server",
            Ctx::LOCATION => "location",
            Ctx::SERVER_IF | Ctx::LOCATION_IF => "if",
            Ctx::LIMIT_EXCEPT => "limit_except",
            Ctx::UPSTREAM | Ctx::STREAM_UPSTREAM => "upstream",
            Ctx::STREAM => "stream",
            Ctx::STREAM_SERVER => "stream server",
            Ctx::MAIL => "mail",
            _ => "block",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Arity {
    Exact(usize),
    Range(usize, usize),
    AtLeast(usize),
}

impl Arity {
    fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exact(k) => n == k,
            Arity::Range(lo, hi) => (lo..=hi).contains(&n),
            Arity::AtLeast(k) => n >= k,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Spec {
    ctx: Ctx,
    args: Arity,
    block: bool,
}

const H: Ctx = Ctx::HTTP;
const S: Ctx = Ctx::SERVER;
const L: Ctx = Ctx::LOCATION;
const SIF: Ctx = Ctx::SERVER_IF;
const LIF: Ctx = Ctx::LOCATION_IF;
const HSL: Ctx = H.or(S).or(L);
const HSLI: Ctx = HSL.or(LIF);
const REWRITE: Ctx = S.or(SIF).or(L).or(LIF);
const STREAMS: Ctx = Ctx::STREAM.or(Ctx::STREAM_SERVER);

#[allow(
    clippy::unnecessary_wraps,
    reason = "keeps the table rows uniform with `None`"
)]
const fn simple(ctx: Ctx, args: Arity) -> Option<Spec> {
    Some(Spec {
        ctx,
        args,
        block: false,
    })
}

#[allow(
    clippy::unnecessary_wraps,
    reason = "keeps the table rows uniform with `None`"
)]
const fn block(ctx: Ctx, args: Arity) -> Option<Spec> {
    Some(Spec {
        ctx,
        args,
        block: true,
    })
}

/// The rule for `name` when it appears in `parent` (only `server` depends on where it is).
fn spec(name: &str, parent: Ctx) -> Option<Spec> {
    use Arity::{AtLeast, Exact, Range};
    match name {
        "proxy_set_header" | "grpc_set_header" | "proxy_buffers" | "auth_request_set"
        | "sub_filter" => simple(HSL, Exact(2)),
        "proxy_pass" => simple(
            L.or(LIF).or(Ctx::LIMIT_EXCEPT).or(Ctx::STREAM_SERVER),
            Exact(1),
        ),
        "grpc_pass" => simple(L.or(LIF), Range(0, 1)),
        "proxy_hide_header"
        | "proxy_pass_header"
        | "proxy_set_body"
        | "proxy_http_version"
        | "proxy_connect_timeout"
        | "proxy_send_timeout"
        | "proxy_read_timeout"
        | "proxy_buffering"
        | "proxy_request_buffering"
        | "proxy_buffer_size"
        | "proxy_intercept_errors"
        | "proxy_next_upstream_tries"
        | "proxy_next_upstream_timeout"
        | "proxy_max_temp_file_size"
        | "proxy_pass_request_headers"
        | "proxy_pass_request_body"
        | "grpc_read_timeout"
        | "grpc_send_timeout"
        | "grpc_connect_timeout"
        | "grpc_hide_header"
        | "grpc_pass_header"
        | "client_max_body_size"
        | "client_body_buffer_size"
        | "default_type"
        | "satisfy"
        | "port_in_redirect"
        | "absolute_redirect"
        | "server_name_in_redirect"
        | "auth_request"
        | "sub_filter_once"
        | "chunked_transfer_encoding" => simple(HSL, Exact(1)),
        "proxy_redirect" | "proxy_cookie_domain" | "proxy_cookie_path" | "keepalive_timeout" => {
            simple(HSL, Range(1, 2))
        }
        "proxy_next_upstream" | "index" | "resolver" | "limit_req" => simple(HSL, AtLeast(1)),
        "more_set_input_headers"
        | "more_clear_input_headers"
        | "more_set_headers"
        | "more_clear_headers" => simple(HSLI, AtLeast(1)),
        "add_header" => simple(HSLI, Range(2, 3)),
        "expires" => simple(HSLI, Range(1, 2)),
        "gzip" | "charset" | "root" => simple(HSLI, Exact(1)),
        "error_page" => simple(HSLI, AtLeast(2)),
        "access_log" => simple(HSLI.or(Ctx::LIMIT_EXCEPT).or(STREAMS), AtLeast(1)),
        "error_log" => simple(Ctx::MAIN.or(HSL).or(STREAMS).or(Ctx::MAIL), AtLeast(1)),
        "set" => simple(REWRITE, Exact(2)),
        "rewrite" => simple(REWRITE, Range(2, 3)),
        "return" => simple(REWRITE.or(Ctx::STREAM_SERVER), Range(1, 2)),
        "break" => simple(REWRITE, Exact(0)),
        "rewrite_log" | "uninitialized_variable_warn" => simple(HSL.or(SIF).or(LIF), Exact(1)),
        "allow" | "deny" => simple(HSL.or(Ctx::LIMIT_EXCEPT).or(STREAMS), Exact(1)),
        "auth_basic" | "auth_basic_user_file" => simple(HSL.or(Ctx::LIMIT_EXCEPT), Exact(1)),
        "alias" => simple(L, Exact(1)),
        "internal" => simple(L, Exact(0)),
        "try_files" => simple(S.or(L), AtLeast(2)),
        "listen" => simple(S.or(Ctx::STREAM_SERVER), AtLeast(1)),
        "server_name" => simple(S, AtLeast(1)),
        "ssl_certificate" | "ssl_certificate_key" => simple(H.or(S).or(STREAMS), Exact(1)),
        "ssl_protocols" | "ssl_ciphers" => simple(H.or(S).or(STREAMS), AtLeast(1)),
        "include" => Some(Spec {
            ctx: Ctx(u16::MAX),
            args: Exact(1),
            block: false,
        }),
        "load_module"
        | "worker_processes"
        | "pid"
        | "env"
        | "worker_rlimit_nofile"
        | "pcre_jit"
        | "daemon"
        | "master_process" => simple(Ctx::MAIN, Exact(1)),
        "user" => simple(Ctx::MAIN, Range(1, 2)),
        "worker_connections" | "multi_accept" | "use" => simple(Ctx::EVENTS, Exact(1)),
        "events" | "http" | "stream" | "mail" => block(Ctx::MAIN, Exact(0)),
        "server" => match parent {
            Ctx::UPSTREAM | Ctx::STREAM_UPSTREAM => {
                simple(Ctx::UPSTREAM.or(Ctx::STREAM_UPSTREAM), AtLeast(1))
            }
            _ => block(H.or(Ctx::STREAM).or(Ctx::MAIL), Exact(0)),
        },
        "location" => block(S.or(L), Range(1, 2)),
        "if" => block(S.or(L), AtLeast(1)),
        "limit_except" => block(L, AtLeast(1)),
        "upstream" => block(H.or(Ctx::STREAM), Exact(1)),
        "map" | "split_clients" => block(H.or(Ctx::STREAM), Exact(2)),
        "geo" => block(H.or(Ctx::STREAM), Range(1, 2)),
        "types" => block(HSL, Exact(0)),
        "keepalive" => simple(Ctx::UPSTREAM, Exact(1)),
        "lua_package_path"
        | "lua_package_cpath"
        | "init_by_lua_block"
        | "init_worker_by_lua_block" => {
            if name.ends_with("_block") {
                block(H, Exact(0))
            } else {
                simple(H, Exact(1))
            }
        }
        "rewrite_by_lua_block"
        | "access_by_lua_block"
        | "header_filter_by_lua_block"
        | "body_filter_by_lua_block"
        | "log_by_lua_block" => block(HSLI, Exact(0)),
        "content_by_lua_block" => block(L.or(LIF), Exact(0)),
        "balancer_by_lua_block" => block(Ctx::UPSTREAM.or(Ctx::STREAM_UPSTREAM), Exact(0)),
        "preread_by_lua_block" => block(STREAMS, Exact(0)),
        _ => None,
    }
}

/// Directives of nginx's own modules that the table does not judge, known by name only: a name
/// that is one of them written with capitals or `-` is reported as unknown, with the right
/// spelling. (Every name here is one nginx accepts; the table's names are known as well.)
const KNOWN_NAMES: &[&str] = &[
    "add_after_body",
    "add_before_body",
    "add_trailer",
    "addition_types",
    "aio",
    "autoindex",
    "client_body_in_file_only",
    "client_body_temp_path",
    "client_body_timeout",
    "client_header_buffer_size",
    "client_header_timeout",
    "directio",
    "disable_symlinks",
    "etag",
    "fastcgi_param",
    "fastcgi_pass",
    "grpc_buffer_size",
    "grpc_ignore_headers",
    "grpc_intercept_errors",
    "grpc_next_upstream",
    "grpc_socket_keepalive",
    "grpc_ssl_certificate",
    "grpc_ssl_certificate_key",
    "grpc_ssl_name",
    "grpc_ssl_server_name",
    "grpc_ssl_trusted_certificate",
    "grpc_ssl_verify",
    "gunzip",
    "gzip_buffers",
    "gzip_comp_level",
    "gzip_disable",
    "gzip_http_version",
    "gzip_min_length",
    "gzip_proxied",
    "gzip_static",
    "gzip_types",
    "gzip_vary",
    "if_modified_since",
    "ignore_invalid_headers",
    "keepalive_requests",
    "keepalive_time",
    "large_client_header_buffers",
    "limit_conn",
    "limit_conn_status",
    "limit_conn_zone",
    "limit_rate",
    "limit_rate_after",
    "limit_req_status",
    "limit_req_zone",
    "lingering_close",
    "lingering_time",
    "lingering_timeout",
    "log_format",
    "log_not_found",
    "log_subrequest",
    "map_hash_bucket_size",
    "map_hash_max_size",
    "merge_slashes",
    "mirror",
    "mirror_request_body",
    "open_file_cache",
    "output_buffers",
    "postpone_output",
    "proxy_bind",
    "proxy_busy_buffers_size",
    "proxy_cache",
    "proxy_cache_bypass",
    "proxy_cache_key",
    "proxy_cache_lock",
    "proxy_cache_methods",
    "proxy_cache_path",
    "proxy_cache_use_stale",
    "proxy_cache_valid",
    "proxy_cookie_flags",
    "proxy_headers_hash_bucket_size",
    "proxy_headers_hash_max_size",
    "proxy_ignore_client_abort",
    "proxy_ignore_headers",
    "proxy_limit_rate",
    "proxy_method",
    "proxy_no_cache",
    "proxy_socket_keepalive",
    "proxy_ssl_certificate",
    "proxy_ssl_certificate_key",
    "proxy_ssl_ciphers",
    "proxy_ssl_name",
    "proxy_ssl_protocols",
    "proxy_ssl_server_name",
    "proxy_ssl_session_reuse",
    "proxy_ssl_trusted_certificate",
    "proxy_ssl_verify",
    "proxy_ssl_verify_depth",
    "proxy_store",
    "proxy_temp_path",
    "real_ip_header",
    "real_ip_recursive",
    "recursive_error_pages",
    "reset_timedout_connection",
    "resolver_timeout",
    "secure_link",
    "secure_link_md5",
    "secure_link_secret",
    "send_lowat",
    "send_timeout",
    "sendfile",
    "server_names_hash_bucket_size",
    "server_names_hash_max_size",
    "server_tokens",
    "set_real_ip_from",
    "slice",
    "ssl_buffer_size",
    "ssl_client_certificate",
    "ssl_dhparam",
    "ssl_ecdh_curve",
    "ssl_prefer_server_ciphers",
    "ssl_session_cache",
    "ssl_session_tickets",
    "ssl_session_timeout",
    "ssl_stapling",
    "ssl_stapling_verify",
    "ssl_trusted_certificate",
    "ssl_verify_client",
    "ssl_verify_depth",
    "stub_status",
    "sub_filter_last_modified",
    "sub_filter_types",
    "subrequest_output_buffer_size",
    "tcp_nodelay",
    "tcp_nopush",
    "types_hash_max_size",
    "underscores_in_headers",
    "valid_referers",
    "variables_hash_bucket_size",
    "variables_hash_max_size",
];

/// For a directive `name` that nginx does not know in `parent`: the known directive it
/// misspells by capitals or `-` for `_`, if any.
fn misspelling_of(name: &str, parent: Ctx) -> Option<String> {
    if !name.bytes().any(|b| b.is_ascii_uppercase() || b == b'-') {
        return None;
    }
    let right = name.to_ascii_lowercase().replace('-', "_");
    (spec(&right, parent).is_some() || KNOWN_NAMES.binary_search(&right.as_str()).is_ok())
        .then_some(right)
}

/// The context a block directive opens, given where it stands.
fn child_context(name: &str, parent: Ctx) -> Ctx {
    match name {
        "http" => Ctx::HTTP,
        "events" => Ctx::EVENTS,
        "stream" => Ctx::STREAM,
        "mail" => Ctx::MAIL,
        "server" if parent == Ctx::STREAM => Ctx::STREAM_SERVER,
        "server" => Ctx::SERVER,
        "location" => Ctx::LOCATION,
        "if" if parent == Ctx::SERVER => Ctx::SERVER_IF,
        "if" => Ctx::LOCATION_IF,
        "limit_except" => Ctx::LIMIT_EXCEPT,
        "upstream" if parent == Ctx::STREAM => Ctx::STREAM_UPSTREAM,
        "upstream" => Ctx::UPSTREAM,
        _ => Ctx::DATA,
    }
}

/// A directive that nginx would refuse where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextError {
    pub span: Span,
    pub message: String,
    /// For an unknown directive that is a known one misspelt (`PROXY_SET_HEADER`): the right
    /// spelling.
    pub spelling: Option<String>,
}

/// Check every directive of `config` as if it were inserted in context `root`.
#[must_use]
pub fn validate(src: &str, config: &Config, root: Ctx) -> Vec<ContextError> {
    let mut out = Vec::new();
    let mut stack: Vec<(&[Directive], Ctx)> = vec![(&config.directives, root)];
    while let Some((list, ctx)) = stack.pop() {
        if ctx == Ctx::DATA {
            continue;
        }
        for d in list {
            let name = d.name(src);
            let Some(spec) = spec(name, ctx) else {
                // A quoted or escaped name is not judged: its value is not what is written.
                let spelling = (d.name.quote == Quote::None && !d.name.escaped)
                    .then(|| misspelling_of(name, ctx))
                    .flatten();
                if let Some(crate::nginx::ast::Block {
                    body: Body::Directives(children),
                    ..
                }) = d.block.as_deref()
                {
                    // Inside a misspelt `LOCATION / { ... }`, lines are judged as in a location.
                    let opens = spelling.as_deref().unwrap_or(name);
                    stack.push((children, child_context(opens, ctx)));
                }
                if let Some(right) = spelling {
                    out.push(ContextError {
                        span: d.name.span,
                        message: format!("unknown directive \"{name}\""),
                        spelling: Some(right),
                    });
                }
                continue;
            };
            if !spec.ctx.contains(ctx) {
                out.push(ContextError {
                    span: d.head_span(),
                    message: format!(
                        "\"{name}\" directive is not allowed here (in a {} block)",
                        ctx.describe()
                    ),
                    spelling: None,
                });
                continue;
            }
            if spec.block && d.block.is_none() {
                out.push(ContextError {
                    span: d.head_span(),
                    message: format!("directive \"{name}\" has no opening \"{{\""),
                    spelling: None,
                });
                continue;
            }
            if !spec.block && d.block.is_some() {
                out.push(ContextError {
                    span: d.head_span(),
                    message: format!("directive \"{name}\" is not terminated by \";\""),
                    spelling: None,
                });
                continue;
            }
            if !spec.args.accepts(d.args.len()) {
                out.push(ContextError {
                    span: d.head_span(),
                    message: format!("invalid number of arguments in \"{name}\" directive"),
                    spelling: None,
                });
            }
            if let Some(crate::nginx::ast::Block {
                body: Body::Directives(children),
                ..
            }) = d.block.as_deref()
            {
                stack.push((children, child_context(name, ctx)));
            }
        }
    }
    out.sort_by_key(|e| e.span);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nginx::parser::parse;

    fn errors(src: &str, root: Ctx) -> Vec<String> {
        validate(src, &parse(src), root)
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    #[test]
    fn proxy_set_header_in_if_is_rejected() {
        let src = "if ($scheme = http) { proxy_set_header X-Forwarded-Proto https; }";
        assert_eq!(
            errors(src, Ctx::LOCATION),
            ["\"proxy_set_header\" directive is not allowed here (in a if block)"]
        );
        // more_set_input_headers is allowed in `if`
        let ok = "if ($scheme = http) { more_set_input_headers 'X-Forwarded-Proto: https'; }";
        assert!(errors(ok, Ctx::LOCATION).is_empty());
    }

    #[test]
    fn header_directives_are_not_allowed_in_stream_or_main() {
        let src = "proxy_set_header X-Forwarded-Proto https;";
        assert_eq!(errors(src, Ctx::STREAM).len(), 1);
        assert_eq!(errors(src, Ctx::MAIN).len(), 1);
        assert!(errors(src, Ctx::LOCATION).is_empty());
        assert!(errors(src, Ctx::SERVER).is_empty());
        assert!(errors(src, Ctx::HTTP).is_empty());
    }

    #[test]
    fn arity_and_blocks() {
        assert_eq!(
            errors("proxy_set_header X-Forwarded-Proto;", Ctx::LOCATION),
            ["invalid number of arguments in \"proxy_set_header\" directive"]
        );
        assert_eq!(
            errors("location /x;", Ctx::SERVER),
            ["directive \"location\" has no opening \"{\""]
        );
        assert!(errors("location /x { proxy_pass http://a; }", Ctx::SERVER).is_empty());
        // map bodies are data
        assert!(errors("map $a $b { default 1; x 2; }", Ctx::HTTP).is_empty());
        // unknown directives are not judged
        assert!(errors("opentelemetry on;", Ctx::LOCATION).is_empty());
        // upstream `server` is a simple directive
        assert!(errors("upstream u { server 127.0.0.1:80; }", Ctx::HTTP).is_empty());
    }

    fn spellings(src: &str, root: Ctx) -> Vec<(String, Option<String>)> {
        validate(src, &parse(src), root)
            .into_iter()
            .map(|e| (src[e.span.range()].to_string(), e.spelling))
            .collect()
    }

    #[test]
    fn a_known_directive_with_capitals_or_hyphens_is_unknown_to_nginx() {
        let src = "PROXY_SET_HEADER X-Forwarded-Proto $scheme;";
        assert_eq!(
            errors(src, Ctx::LOCATION),
            ["unknown directive \"PROXY_SET_HEADER\""]
        );
        assert_eq!(
            spellings(src, Ctx::LOCATION),
            [("PROXY_SET_HEADER".into(), Some("proxy_set_header".into()))]
        );
        for (src, right) in [
            ("Proxy_Set_Header X 1;", "proxy_set_header"),
            ("proxy-set-header X 1;", "proxy_set_header"),
            ("More_Set_Input_Headers 'X: 1';", "more_set_input_headers"),
            // known by name only: not in the table, but nginx's own
            ("proxy-cache-valid 200 1m;", "proxy_cache_valid"),
            ("Real_IP_Header X-Forwarded-For;", "real_ip_header"),
        ] {
            assert_eq!(
                spellings(src, Ctx::LOCATION),
                [(
                    src[..src.find(' ').unwrap()].to_string(),
                    Some(right.into())
                )],
                "{src}"
            );
        }
        // the lines inside a misspelt block are judged as in the block it meant
        assert_eq!(
            errors(
                "LOCATION /x { if ($a) { proxy_set_header X 1; } }",
                Ctx::SERVER
            ),
            [
                "unknown directive \"LOCATION\"",
                "\"proxy_set_header\" directive is not allowed here (in a if block)"
            ]
        );
    }

    #[test]
    fn unknown_names_that_are_not_misspellings_are_not_judged() {
        for src in [
            // NAXSI's directives have capitals
            "SecRulesEnabled;",
            "BasicRule wl:1000;",
            "DeniedUrl \"/RequestDenied\";",
            // third-party modules, written right
            "opentelemetry on;",
            "more_set_headers 'X: 1';",
            "proxy_cache_valid 200 1m;",
            // a quoted name is not what is written
            "\"PROXY_SET_HEADER\" X 1;",
        ] {
            assert!(errors(src, Ctx::LOCATION).is_empty(), "{src}");
        }
        // data, not directives
        assert!(errors("map $a $b { Default 1; PROXY_SET_HEADER 2; }", Ctx::HTTP).is_empty());
    }

    #[test]
    fn known_names_are_sorted_lowercase_and_not_in_the_table() {
        assert!(KNOWN_NAMES.windows(2).all(|w| w[0] < w[1]));
        for name in KNOWN_NAMES {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()),
                "{name}"
            );
            assert!(
                spec(name, Ctx::LOCATION).is_none(),
                "{name} is in the table"
            );
        }
    }
}
