//! Where nginx accepts a directive, how many arguments it takes, and whether it opens a block.
//!
//! The table covers the directives that appear in ingress-nginx snippets and rendered
//! configurations. A directive that is not in the table is not checked: controller images carry
//! many third-party modules, and reporting an "unknown directive" we merely do not know would be a
//! false positive. The messages repeat nginx's own wording so that users recognise them.

use crate::nginx::ast::{Body, Config, Directive};
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
                if let Some(crate::nginx::ast::Block {
                    body: Body::Directives(children),
                    ..
                }) = d.block.as_deref()
                {
                    stack.push((children, child_context(name, ctx)));
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
                });
                continue;
            }
            if spec.block && d.block.is_none() {
                out.push(ContextError {
                    span: d.head_span(),
                    message: format!("directive \"{name}\" has no opening \"{{\""),
                });
                continue;
            }
            if !spec.block && d.block.is_some() {
                out.push(ContextError {
                    span: d.head_span(),
                    message: format!("directive \"{name}\" is not terminated by \";\""),
                });
                continue;
            }
            if !spec.args.accepts(d.args.len()) {
                out.push(ContextError {
                    span: d.head_span(),
                    message: format!("invalid number of arguments in \"{name}\" directive"),
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
}
