//! Hostile clients against the webhook over real HTTPS, and certificate rotation under load.
//!
//! Every hostile request gets an exact answer (allowed, denied with which rule and line, or the
//! HTTP status and message of the refusal), and is followed by the requests of the original
//! report: the Ingress with `proxy_set_header X-Forwarded-Proto $scheme;` in its
//! configuration-snippet must still be denied with the very message it got before, and a clean
//! Ingress allowed, on the same keep-alive connection when the server keeps it and on a new one.
//! Every wait is bounded; nothing asserts on speed.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Binary, Conn, Response, TIMEOUT, TestServer, der, fixture, metrics_at, minted, mount_secret,
    sample, trusting, wait_for_cert,
};
use rustls::ClientConfig;
use serde_json::{Value, json};
use snippet_guard::k8s::configmap_cache::ConfigMapCache;
use snippet_guard::k8s::tls::{self, CertStore, PemFiles, SelfSigned};
use snippet_guard::k8s::webhook::Mode;

const SNIPPET: &str = "nginx.ingress.kubernetes.io/configuration-snippet";
const REPORT: &str = "create-original-report.json";
const REPORT_UID: &str = "0df28fce-5f6a-4a5e-8c1f-6a1f0f4e3b01";
const FIXED: &str = "create-fixed.json";
const FIXED_UID: &str = "1a6b1f57-2d1c-4a1a-9d43-2c7f5a0b8e02";
/// The last line of every denial.
const HINT: &str =
    "To accept a finding, annotate the object with `snippet-guard.io/ignore-<rule-id>: <reason>`.";
/// How the denial of the original report starts; the rest is captured once and compared whole.
const REPORT_DENIAL: &str = "redundant-forwarded-proto: X-Forwarded-Proto is already set";
/// `src (line N). Fix: ` of a finding on line `n` of the configuration-snippet.
fn at_line(n: usize) -> String {
    format!("(annotation {SNIPPET}, line {n}). Fix: ")
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

fn to_vec(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// A fixture with its configuration-snippet replaced.
fn with_snippet(name: &str, snippet: &str) -> Value {
    let mut v = fixture_json(name);
    v["request"]["object"]["metadata"]["annotations"][SNIPPET] = snippet.into();
    v
}

/// `v` serialized, with the one occurrence of `marker` replaced by raw `bytes`.
fn splice(v: &Value, marker: &str, bytes: &[u8]) -> Vec<u8> {
    let text = serde_json::to_string(v).unwrap();
    assert_eq!(text.matches(marker).count(), 1, "{marker}");
    let at = text.find(marker).unwrap();
    let mut out = text.as_bytes()[..at].to_vec();
    out.extend_from_slice(bytes);
    out.extend_from_slice(&text.as_bytes()[at + marker.len()..]);
    out
}

/// `[[[[...]]]]`, `depth` deep.
fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// What a request must get.
#[derive(Debug, Clone)]
enum Expect {
    /// HTTP 200, allowed, no warnings.
    Allowed { uid: &'static str },
    /// HTTP 200, denied (403 Forbidden in the review) with exactly this message.
    DeniedWith { uid: &'static str, message: String },
    /// HTTP 200, denied: one line per finding, each starting with its prefix, then [`HINT`].
    Denied {
        uid: &'static str,
        findings: Vec<String>,
    },
    /// Refused with this HTTP status and exactly this `status.message`.
    Refused { status: u16, message: String },
    /// Refused with HTTP 400 and `<message> at line 1 column <n>` (a serde_json position).
    RefusedAt { message: String },
}

#[track_caller]
fn check(what: &str, r: &Response, expect: &Expect) {
    let text = String::from_utf8_lossy(&r.body);
    let review = r.json();
    let response = &review["response"];
    let message = response["status"]["message"].as_str().unwrap_or_default();
    let ctx = format!("{what}: HTTP {} {text}", r.status);
    assert_eq!(r.header("content-type"), Some("application/json"), "{ctx}");
    assert_eq!(review["kind"], "AdmissionReview", "{ctx}");
    match expect {
        Expect::Allowed { uid } => {
            assert_eq!(r.status, 200, "{ctx}");
            assert_eq!(response["uid"], *uid, "{ctx}");
            assert_eq!(response["allowed"], true, "{ctx}");
            assert!(response.get("warnings").is_none(), "{ctx}");
        }
        Expect::DeniedWith { uid, message: want } => {
            assert_denied(&ctx, r, uid);
            assert_eq!(message, want, "{what}");
        }
        Expect::Denied { uid, findings } => {
            assert_denied(&ctx, r, uid);
            let lines: Vec<&str> = message.split('\n').collect();
            assert_eq!(lines.len(), findings.len() + 1, "{ctx}");
            for (line, want) in lines.iter().zip(findings) {
                assert!(line.starts_with(want.as_str()), "{want:?} in {ctx}");
            }
            assert_eq!(lines[findings.len()], HINT, "{ctx}");
        }
        Expect::Refused {
            status,
            message: want,
        } => {
            assert_refused(&ctx, r, *status);
            assert_eq!(message, want, "{what}");
        }
        Expect::RefusedAt { message: want } => {
            assert_refused(&ctx, r, 400);
            let column = message
                .strip_prefix(want.as_str())
                .and_then(|rest| rest.strip_prefix(" at line 1 column "))
                .unwrap_or_else(|| panic!("{want:?} at line 1 column N, in {ctx}"));
            assert!(column.parse::<u32>().is_ok(), "{ctx}");
        }
    }
}

#[track_caller]
fn assert_denied(ctx: &str, r: &Response, uid: &str) {
    let response = &r.json()["response"];
    assert_eq!(r.status, 200, "{ctx}");
    assert_eq!(response["uid"], uid, "{ctx}");
    assert_eq!(response["allowed"], false, "{ctx}");
    assert_eq!(response["status"]["code"], 403, "{ctx}");
    assert_eq!(response["status"]["reason"], "Forbidden", "{ctx}");
}

#[track_caller]
fn assert_refused(ctx: &str, r: &Response, status: u16) {
    let response = &r.json()["response"];
    assert_eq!(r.status, status, "{ctx}");
    assert_eq!(response["uid"], "", "{ctx}");
    assert_eq!(response["allowed"], false, "{ctx}");
    assert_eq!(response["status"]["reason"], "InvalidRequest", "{ctx}");
}

/// The denial of `n` nested `{` with no directive: one finding each, the first ten spelt out.
/// `n` bare `{` then `n` `}`: the parser follows 64 levels, so the findings are one
/// `unexpected "{"` per level and, past 64, "nested more than 64 levels deep" once, where it
/// skipped the rest to its `}`; the denial spells out the first ten.
fn bare_braces(n: usize) -> Vec<String> {
    let depth = snippet_guard::nginx::parser::MAX_DEPTH;
    let total = if n > depth { depth + 1 } else { n };
    let mut findings = vec![format!("invalid-snippet: unexpected \"{{\" {}", at_line(1)); 10];
    findings.push(format!(
        "... and {} more; run `snippet-guard lint` on the object to see all",
        total - 10
    ));
    findings
}

fn invalid(what: &str) -> Expect {
    Expect::RefusedAt {
        message: format!("request body is not a valid AdmissionReview: {what}"),
    }
}

#[track_caller]
fn post(what: &str, conn: &mut Conn, body: &[u8]) -> Response {
    conn.request("POST", "/validate", body)
        .unwrap_or_else(|e| panic!("{what}: no answer: {e}"))
}

/// Read until the server closes the connection (or `within` passes): `Some(bytes read)` when
/// it closed.
fn closed_within(conn: &mut Conn, within: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        conn.tls.sock.set_read_timeout(Some(left)).unwrap();
        match conn.tls.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            // A reset, or a TCP close without close_notify: closed all the same.
            Err(_) => return Some(got),
        }
    }
}

/// The webhook binary with a throwaway certificate, on ports chosen by the kernel.
struct Webhook {
    bin: Binary,
    addr: SocketAddr,
    metrics_addr: SocketAddr,
    config: Arc<ClientConfig>,
}

impl Webhook {
    fn spawn() -> Self {
        let common::WebhookBinary {
            bin,
            addr,
            metrics_addr,
            config,
        } = Binary::webhook(&[]);
        Self {
            bin,
            addr,
            metrics_addr,
            config,
        }
    }

    fn conn(&self) -> Conn {
        Conn::open(self.addr, self.config.clone()).unwrap()
    }

    fn metric(&self, line_start: &str) -> u64 {
        sample(&metrics_at(self.metrics_addr), line_start)
    }
}

/// [`answers_unchanged`] on the connection of the hostile request and on a new one.
#[track_caller]
fn next_requests_unaffected(after: &str, w: &Webhook, same: Option<&mut Conn>, baseline: &str) {
    answers_unchanged(after, w.conn(), same, baseline);
}

/// The original report is denied with `baseline` and a clean Ingress allowed: on `same` (the
/// connection the hostile request came on, when the server kept it) and on `fresh`.
#[track_caller]
fn answers_unchanged(after: &str, mut fresh: Conn, same: Option<&mut Conn>, baseline: &str) {
    let denied = Expect::DeniedWith {
        uid: REPORT_UID,
        message: baseline.to_string(),
    };
    let allowed = Expect::Allowed { uid: FIXED_UID };
    for conn in same.into_iter().chain([&mut fresh]) {
        check(after, &post(after, conn, &fixture(REPORT)), &denied);
        check(after, &post(after, conn, &fixture(FIXED)), &allowed);
    }
}

#[test]
fn hostile_requests_get_exact_answers_and_do_not_affect_the_next_request() {
    let w = Webhook::spawn();
    let mut conn = w.conn();
    let first = post("the original report", &mut conn, &fixture(REPORT));
    assert_eq!(first.status, 200);
    let baseline = first.json()["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    check(
        "the original report",
        &first,
        &Expect::Denied {
            uid: REPORT_UID,
            findings: vec![format!("{REPORT_DENIAL} by ingress-nginx here")],
        },
    );
    assert!(baseline.contains(&at_line(2)), "{baseline}");
    check(
        "the fixed Ingress",
        &post("the fixed Ingress", &mut conn, &fixture(FIXED)),
        &Expect::Allowed { uid: FIXED_UID },
    );
    let report_denied = Expect::DeniedWith {
        uid: REPORT_UID,
        message: baseline.clone(),
    };

    // All along, a client that sent a head and part of a body and stalls: the binary gives a
    // body 10 s (BODY_READ_TIMEOUT), the requests below are answered meanwhile.
    let stalled = {
        let mut c = w.conn();
        c.send(Conn::head("POST", "/validate", "content-length: 1000\r\n").as_bytes())
            .unwrap();
        c.send(b"{\"kind\":\"AdmissionReview\",").unwrap();
        std::thread::spawn(move || (c.read_response(), c))
    };

    // Complete requests with an answer; the connection stays usable after each.
    let padding = "# padding padding padding padding padding padding padding padding\n";
    let pad_lines = (1 << 20) / padding.len() + 1;
    let huge = format!(
        "more_set_headers \"X-Frame-Options: DENY\";\n{}proxy_set_header X-Forwarded-Proto $scheme;\n",
        padding.repeat(pad_lines)
    );
    assert!(huge.len() > 1 << 20);
    let nested_blocks = format!("{}{}", "location / {".repeat(100_000), "}".repeat(100_000));
    let syntax = |what: &str, line: usize| format!("invalid-snippet: {what} {}", at_line(line));
    let mut many_annotations = fixture_json(REPORT);
    let annotations = many_annotations["request"]["object"]["metadata"]["annotations"]
        .as_object_mut()
        .unwrap();
    for i in 0..100_000 {
        annotations.insert(format!("k{i}"), "v".into());
    }
    let mut many_ignored_keys = fixture_json(REPORT);
    many_ignored_keys["request"]["userInfo"]["extra"] = (0..100_000)
        .map(|i| (format!("k{i}"), json!(["v"])))
        .collect::<serde_json::Map<_, _>>()
        .into();
    // The report with `status.loadBalancer` 100,000 arrays deep, a field the webhook skips.
    let deep_in_status = {
        let mut v = fixture_json(REPORT);
        v["request"]["object"]["status"]["loadBalancer"] = "DEEP".into();
        splice(&v, "\"DEEP\"", nested_arrays(100_000).as_bytes())
    };
    let deep_objects = {
        let mut v = fixture_json(REPORT);
        v["request"]["options"]["extra"] = "DEEP".into();
        let deep = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
        splice(&v, "\"DEEP\"", deep.as_bytes())
    };
    let deep_in_configmap_data = {
        let mut v = fixture_json("update-controller-configmap.json");
        v["request"]["object"]["data"]["server-snippet"] = "DEEP".into();
        splice(&v, "\"DEEP\"", nested_arrays(100_000).as_bytes())
    };
    let annotations_of = |value: Value| {
        let mut v = fixture_json(REPORT);
        v["request"]["object"]["metadata"]["annotations"] = value;
        to_vec(&v)
    };
    let snippet_of = |value: Value| {
        let mut v = fixture_json(REPORT);
        v["request"]["object"]["metadata"]["annotations"][SNIPPET] = value;
        to_vec(&v)
    };
    let report_text = serde_json::to_string(&fixture_json(REPORT)).unwrap();
    let fixed_text = serde_json::to_string(&fixture_json(FIXED)).unwrap();
    let snippet_key = format!("\"{SNIPPET}\":");
    assert_eq!(report_text.matches(&snippet_key).count(), 1);
    assert_eq!(fixed_text.matches(&snippet_key).count(), 1);
    let snippet_json =
        |v: Value| v["request"]["object"]["metadata"]["annotations"][SNIPPET].to_string();
    let (offending, clean) = (
        snippet_json(fixture_json(REPORT)),
        snippet_json(fixture_json(FIXED)),
    );
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "a 1 MiB snippet, the offending line last",
            to_vec(&with_snippet(FIXED, &huge)),
            Expect::DeniedWith {
                uid: FIXED_UID,
                message: baseline.replace(&at_line(2), &at_line(pad_lines + 2)),
            },
        ),
        (
            "100,000 nested blocks",
            to_vec(&with_snippet(FIXED, &nested_blocks)),
            Expect::Denied {
                uid: FIXED_UID,
                findings: vec![syntax("blocks are nested more than 64 levels deep", 1)],
            },
        ),
        (
            // 100,000 of them: `a_snippet_of_100000_bare_braces_is_answered`.
            "2,000 bare nested braces",
            to_vec(&with_snippet(
                FIXED,
                &format!("{}{}", "{".repeat(2_000), "}".repeat(2_000)),
            )),
            Expect::Denied {
                uid: FIXED_UID,
                findings: bare_braces(2_000),
            },
        ),
        (
            "a NUL character in the snippet (JSON \\u0000)",
            to_vec(&with_snippet(
                FIXED,
                "proxy_set_header X-Forwarded\0-Proto $scheme;\n",
            )),
            Expect::Denied {
                uid: FIXED_UID,
                findings: vec![syntax("NUL byte in configuration text", 1)],
            },
        ),
        (
            "a raw NUL byte in a JSON string",
            splice(
                &with_snippet(FIXED, "proxy_set_header X-Forwarded@NUL@-Proto $scheme;\n"),
                "@NUL@",
                b"\0",
            ),
            invalid("control character (\\u0000-\\u001F) found while parsing a string"),
        ),
        (
            "a body that is not UTF-8",
            b"\xff\xfe\xfd not utf-8".to_vec(),
            invalid("expected value"),
        ),
        (
            "invalid UTF-8 in the snippet",
            splice(
                &with_snippet(FIXED, "proxy_set_header X-@BAD@ $scheme;\n"),
                "@BAD@",
                b"\xff\xfe",
            ),
            invalid("invalid unicode code point"),
        ),
        (
            // serde_json does not check UTF-8 in what it skips; the object is judged as sent.
            "invalid UTF-8 in a field the webhook skips",
            {
                let mut v = fixture_json(REPORT);
                v["request"]["userInfo"]["username"] = "@BAD@".into();
                splice(&v, "@BAD@", b"\xff\xfe")
            },
            report_denied.clone(),
        ),
        (
            "a body of arrays 100,000 deep",
            nested_arrays(100_000).into_bytes(),
            invalid("invalid type: sequence, expected a string"),
        ),
        (
            "a body of 100,000 unclosed arrays",
            "[".repeat(100_000).into_bytes(),
            invalid("invalid type: sequence, expected a string"),
        ),
        (
            "arrays 100,000 deep where the webhook skips them",
            deep_in_status,
            report_denied.clone(),
        ),
        (
            "objects 100,000 deep where the webhook skips them",
            deep_objects,
            report_denied.clone(),
        ),
        (
            "arrays 100,000 deep in ConfigMap data",
            deep_in_configmap_data,
            invalid("recursion limit exceeded"),
        ),
        (
            "100,000 annotations",
            to_vec(&many_annotations),
            report_denied.clone(),
        ),
        (
            "100,000 keys where the webhook skips them",
            to_vec(&many_ignored_keys),
            report_denied.clone(),
        ),
        (
            "two `request`s",
            report_text
                .replacen("\"request\":{", "\"request\":null,\"request\":{", 1)
                .into_bytes(),
            invalid("duplicate field `request`"),
        ),
        (
            "two `annotations`",
            report_text
                .replacen(
                    "\"annotations\":{",
                    "\"annotations\":{},\"annotations\":{",
                    1,
                )
                .into_bytes(),
            invalid("duplicate field `annotations`"),
        ),
        (
            // A key twice in a JSON object: the last one counts, as for the API server.
            "the snippet annotation twice, the clean one last",
            fixed_text
                .replacen(
                    &snippet_key,
                    &format!("{snippet_key}{offending},{snippet_key}"),
                    1,
                )
                .into_bytes(),
            Expect::Allowed { uid: FIXED_UID },
        ),
        (
            "the snippet annotation twice, the offending one last",
            report_text
                .replacen(
                    &snippet_key,
                    &format!("{snippet_key}{clean},{snippet_key}"),
                    1,
                )
                .into_bytes(),
            report_denied.clone(),
        ),
        (
            "annotations a number",
            annotations_of(json!(5)),
            invalid("invalid type: integer `5`, expected a map"),
        ),
        (
            "annotations an array",
            annotations_of(json!(["a"])),
            invalid("invalid type: sequence, expected a map"),
        ),
        (
            "annotations a string",
            annotations_of(json!("x")),
            invalid("invalid type: string \"x\", expected a map"),
        ),
        (
            "annotations null",
            annotations_of(Value::Null),
            Expect::Allowed { uid: REPORT_UID },
        ),
        (
            "an annotation a number",
            snippet_of(json!(5)),
            invalid("invalid type: integer `5`, expected a string"),
        ),
        (
            "an annotation an array",
            snippet_of(json!(["proxy_set_header X-Forwarded-Proto $scheme;"])),
            invalid("invalid type: sequence, expected a string"),
        ),
        (
            "an annotation null",
            snippet_of(Value::Null),
            invalid("invalid type: null, expected a string"),
        ),
        (
            "an annotation an object",
            snippet_of(json!({"a": "b"})),
            invalid("invalid type: map, expected a string"),
        ),
    ];
    for (what, body, expect) in &cases {
        assert!(body.len() < 3 * 1024 * 1024, "{what}: under the body limit");
        let r = post(what, &mut conn, body);
        check(what, &r, expect);
        next_requests_unaffected(what, &w, Some(&mut conn), &baseline);
    }

    // Larger than --max-body-bytes (3 MiB by default), declared: 413 from the head alone, and
    // the connection is closed (its body was never read).
    let limit = 3 * 1024 * 1024;
    let too_large = Expect::Refused {
        status: 413,
        message: format!("request body is larger than {limit} bytes"),
    };
    let mut c = w.conn();
    c.send(
        Conn::head(
            "POST",
            "/validate",
            &format!("content-length: {}\r\n", limit + 1),
        )
        .as_bytes(),
    )
    .unwrap();
    check(
        "declared too large",
        &c.read_response().unwrap(),
        &too_large,
    );
    assert_eq!(closed_within(&mut c, TIMEOUT), Some(Vec::new()));
    next_requests_unaffected("declared too large", &w, None, &baseline);

    // Larger, chunked: counted as it arrives. The last chunk is not finished, so that the
    // server has read everything sent when it answers (no reset eats the answer).
    let mut c = w.conn();
    c.send(Conn::head("POST", "/validate", "transfer-encoding: chunked\r\n").as_bytes())
        .unwrap();
    let mib = vec![b' '; 1 << 20];
    for _ in 0..3 {
        c.send(format!("{:x}\r\n", mib.len()).as_bytes()).unwrap();
        c.send(&mib).unwrap();
        c.send(b"\r\n").unwrap();
    }
    c.send(b"1\r\n ").unwrap();
    check("chunked too large", &c.read_response().unwrap(), &too_large);
    next_requests_unaffected("chunked too large", &w, None, &baseline);

    // A body cut short: the client closes its side (close_notify, FIN) half-way.
    let body = fixture(REPORT);
    let mut c = w.conn();
    let head = Conn::head(
        "POST",
        "/validate",
        &format!("content-length: {}\r\n", body.len()),
    );
    c.send(head.as_bytes()).unwrap();
    c.send(&body[..body.len() / 2]).unwrap();
    c.tls.conn.send_close_notify();
    c.tls.flush().unwrap();
    c.tls.sock.shutdown(Shutdown::Write).unwrap();
    check(
        "a body cut short",
        &c.read_response().unwrap(),
        &Expect::Refused {
            status: 400,
            message: "cannot read the request body: error reading a body from connection".into(),
        },
    );
    next_requests_unaffected("a body cut short", &w, None, &baseline);

    // A body cut short: the connection is dropped half-way. No one to answer; counted.
    let body_read = r#"snippet_guard_webhook_errors_total{error="body_read"}"#;
    let before = w.metric(body_read);
    let mut c = w.conn();
    c.send(head.as_bytes()).unwrap();
    c.send(&body[..body.len() / 2]).unwrap();
    drop(c);
    let deadline = Instant::now() + TIMEOUT;
    while w.metric(body_read) == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(w.metric(body_read), before + 1);
    next_requests_unaffected("a connection dropped mid-body", &w, None, &baseline);

    // The stalled client got its answer when its 10 s were up, and was then let go.
    let (r, mut c) = stalled.join().unwrap();
    check(
        "a stalled body",
        &r.unwrap(),
        &Expect::Refused {
            status: 400,
            message: "cannot read the request body: not received within 10s".into(),
        },
    );
    assert_eq!(closed_within(&mut c, TIMEOUT), Some(Vec::new()));

    next_requests_unaffected("a stalled body", &w, Some(&mut conn), &baseline);
    let r = conn.request("GET", "/healthz", b"").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok\n"[..]));
    let mut bin = w.bin;
    assert!(
        bin.child.try_wait().unwrap().is_none(),
        "the webhook exited"
    );
}

/// The denial of the original report by a server, over a new connection.
fn report_denial(addr: SocketAddr, config: &Arc<ClientConfig>) -> String {
    let mut conn = Conn::open(addr, config.clone()).unwrap();
    let r = post("the original report", &mut conn, &fixture(REPORT));
    let message = r.json()["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    check(
        "the original report",
        &r,
        &Expect::DeniedWith {
            uid: REPORT_UID,
            message: message.clone(),
        },
    );
    assert!(message.starts_with(REPORT_DENIAL), "{message}");
    assert!(message.contains(&at_line(2)), "{message}");
    message
}

/// Whether the server closed a raw TCP connection within `within`.
fn tcp_closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        tcp.set_read_timeout(Some(left)).unwrap();
        match tcp.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
}

/// The head of a request, cut in the middle of a header.
const PARTIAL_HEAD: &[u8] = b"POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-le";

#[test]
fn stalled_clients_do_not_hold_up_others_and_are_dropped() {
    const EACH: usize = 20;
    let (ca, certs) = minted();
    // The test server gives a body 300 ms.
    let server = TestServer::start(Mode::Enforce, certs, ConfigMapCache::empty);
    let (addr, config) = (server.addr(), trusting(&[&ca.ca_pem]));
    let baseline = report_denial(addr, &config);
    let mut kept = Conn::open(addr, config.clone()).unwrap();

    // Connected, and never a ClientHello.
    let mut silent: Vec<TcpStream> = (0..EACH)
        .map(|_| TcpStream::connect_timeout(&addr, TIMEOUT).unwrap())
        .collect();
    // Handshake done, then part of a request head.
    // (Held to the end: see `a_client_stalled_in_its_request_head_is_dropped`.)
    let partial_heads: Vec<Conn> = (0..EACH)
        .map(|_| {
            let mut c = Conn::open(addr, config.clone()).unwrap();
            c.send(PARTIAL_HEAD).unwrap();
            c
        })
        .collect();
    // A whole head, then part of the body.
    let mut partial_bodies: Vec<Conn> = (0..EACH)
        .map(|_| {
            let mut c = Conn::open(addr, config.clone()).unwrap();
            c.send(Conn::head("POST", "/validate", "content-length: 1000\r\n").as_bytes())
                .unwrap();
            c.send(b"{\"kind\":\"AdmissionReview\",").unwrap();
            c
        })
        .collect();

    // Everyone else is answered meanwhile, on a kept and on new connections.
    for round in 0..3 {
        let fresh = Conn::open(addr, config.clone()).unwrap();
        answers_unchanged(
            &format!("stalled clients, round {round}"),
            fresh,
            Some(&mut kept),
            &baseline,
        );
    }

    // A body that does not arrive in time is refused, and the connection closed.
    for c in &mut partial_bodies {
        check(
            "a stalled body",
            &c.read_response().unwrap(),
            &Expect::Refused {
                status: 400,
                message: "cannot read the request body: not received within 300ms".into(),
            },
        );
        assert_eq!(closed_within(c, TIMEOUT), Some(Vec::new()));
    }
    // No TLS handshake: dropped after the handshake timeout (axum-server's, 10 s).
    for tcp in &mut silent {
        assert!(
            tcp_closed_within(tcp, 2 * TIMEOUT),
            "a connection without a handshake was never dropped"
        );
    }
    let fresh = Conn::open(addr, config.clone()).unwrap();
    answers_unchanged("stalled clients dropped", fresh, Some(&mut kept), &baseline);
    let r = kept.request("GET", "/healthz", b"").unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok\n"[..]));
    drop(partial_heads);
}

#[test]
fn a_client_stalled_in_its_request_head_is_dropped() {
    let (ca, certs) = minted();
    let server = TestServer::start(Mode::Enforce, certs, ConfigMapCache::empty);
    let (addr, config) = (server.addr(), trusting(&[&ca.ca_pem]));
    let baseline = report_denial(addr, &config);
    // After the handshake: nothing at all, or part of a head.
    let mut idle = Conn::open(addr, config.clone()).unwrap();
    let mut partial = Conn::open(addr, config.clone()).unwrap();
    partial.send(PARTIAL_HEAD).unwrap();
    answers_unchanged(
        "stalled heads",
        Conn::open(addr, config.clone()).unwrap(),
        None,
        &baseline,
    );
    for (what, c) in [("idle", &mut idle), ("partial head", &mut partial)] {
        let closed = closed_within(c, 3 * TIMEOUT);
        assert!(closed.is_some(), "{what}: never dropped");
    }
}

#[test]
fn a_snippet_of_100000_bare_braces_is_answered() {
    let (ca, certs) = minted();
    let server = TestServer::start(Mode::Enforce, certs, ConfigMapCache::empty);
    let (addr, config) = (server.addr(), trusting(&[&ca.ca_pem]));
    let baseline = report_denial(addr, &config);
    let braces = format!("{}{}", "{".repeat(100_000), "}".repeat(100_000));
    let mut conn = Conn::open(addr, config.clone()).unwrap();
    // The client waits TIMEOUT (30 s), the most an API server waits for a webhook.
    let r = post(
        "100,000 bare braces",
        &mut conn,
        &to_vec(&with_snippet(FIXED, &braces)),
    );
    check(
        "100,000 bare braces",
        &r,
        &Expect::Denied {
            uid: FIXED_UID,
            findings: bare_braces(100_000),
        },
    );
    answers_unchanged(
        "100,000 bare braces",
        Conn::open(addr, config.clone()).unwrap(),
        Some(&mut conn),
        &baseline,
    );
}

// ---------------------------------------------------------------------------------------------
// Certificate rotation under load.

/// How a renewed certificate reaches the files the server reads.
#[derive(Debug, Clone, Copy)]
enum Renewal {
    /// A mounted Secret: a new `..<timestamp>` directory, and `..data` swapped to it.
    SecretVolume,
    /// `tls.crt`, then `tls.key`, rewritten in place (for a moment they do not match).
    PlainFiles,
}

fn install(how: Renewal, dir: &Path, n: usize, pair: &SelfSigned) {
    match how {
        Renewal::SecretVolume => {
            mount_secret(dir, &format!("2025_0{n}_01"), &pair.cert_pem, &pair.key_pem);
        }
        Renewal::PlainFiles => {
            std::fs::write(dir.join("tls.crt"), &pair.cert_pem).unwrap();
            std::fs::write(dir.join("tls.key"), &pair.key_pem).unwrap();
        }
    }
}

/// What the clients share with the test.
struct Load {
    stop: AtomicBool,
    failures: Mutex<Vec<String>>,
    /// Rounds completed, per client.
    rounds: Vec<AtomicUsize>,
    /// New connections, per certificate (DER) they were served.
    served: Mutex<HashMap<Vec<u8>, usize>>,
}

impl Load {
    fn rounds(&self) -> Vec<usize> {
        self.rounds
            .iter()
            .map(|r| r.load(Ordering::SeqCst))
            .collect()
    }

    /// Wait (bounded) for `done`, failing at once with what the clients saw go wrong.
    fn wait_for(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let failures = self.failures.lock().unwrap().clone();
            assert!(
                failures.is_empty(),
                "while waiting for {what}: {failures:#?}"
            );
            if done(self) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: not within {TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// One review on `conn`, checked without panicking (a client thread reports, the test fails).
fn ask(conn: &mut Conn, name: &str, baseline: &str) -> Result<(), String> {
    let r = conn
        .request("POST", "/validate", &fixture(name))
        .map_err(|e| format!("{name}: {e}"))?;
    let review: Value = serde_json::from_slice(&r.body).map_err(|e| format!("{name}: {e}"))?;
    let response = &review["response"];
    let ok = r.status == 200
        && match name {
            REPORT => {
                response["uid"] == REPORT_UID
                    && response["allowed"] == false
                    && response["status"]["message"] == baseline
            }
            _ => response["uid"] == FIXED_UID && response["allowed"] == true,
        };
    if ok {
        Ok(())
    } else {
        Err(format!("{name}: HTTP {} {review}", r.status))
    }
}

/// A client under load: a keep-alive connection opened before any rotation and used every
/// round, and a new connection every round (two requests on it every other round). Returns
/// the kept connection.
fn client(
    i: usize,
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    load: &Load,
    baseline: &str,
) -> Result<Conn, String> {
    let mut kept = Conn::open(addr, config.clone()).map_err(|e| format!("open: {e}"))?;
    let mut round = 0usize;
    while !load.stop.load(Ordering::SeqCst) {
        ask(&mut kept, REPORT, baseline).map_err(|e| format!("kept connection: {e}"))?;
        ask(&mut kept, FIXED, baseline).map_err(|e| format!("kept connection: {e}"))?;
        let mut conn =
            Conn::open(addr, config.clone()).map_err(|e| format!("new connection: {e}"))?;
        *load
            .served
            .lock()
            .unwrap()
            .entry(conn.peer_cert())
            .or_default() += 1;
        let (a, b) = if (i + round).is_multiple_of(2) {
            (REPORT, FIXED)
        } else {
            (FIXED, REPORT)
        };
        ask(&mut conn, a, baseline).map_err(|e| format!("new connection: {e}"))?;
        if round.is_multiple_of(2) {
            ask(&mut conn, b, baseline).map_err(|e| format!("new connection: {e}"))?;
        }
        round += 1;
        load.rounds[i].store(round, Ordering::SeqCst);
    }
    Ok(kept)
}

fn rotation_under_load(how: Renewal) {
    const CLIENTS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let pairs: Vec<SelfSigned> = (0..4)
        .map(|_| tls::self_signed(&["localhost".into()]).unwrap())
        .collect();
    install(how, dir.path(), 0, &pairs[0]);
    let store = CertStore::new();
    let server = TestServer::start(Mode::Enforce, store.clone(), ConfigMapCache::empty);
    let files = PemFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
        interval: Duration::from_millis(50),
    };
    server.rt.spawn(tls::watch_files(store, files, |_| {}));
    let addr = server.addr();
    let cas: Vec<&str> = pairs.iter().map(|p| p.ca_pem.as_str()).collect();
    let config = trusting(&cas);
    let first = der(&pairs[0].cert_pem);
    assert!(wait_for_cert(addr, &config, &first));
    let baseline = report_denial(addr, &config);

    let load = Arc::new(Load {
        stop: AtomicBool::new(false),
        failures: Mutex::new(Vec::new()),
        rounds: (0..CLIENTS).map(|_| AtomicUsize::new(0)).collect(),
        served: Mutex::new(HashMap::new()),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (load, config, baseline) = (load.clone(), config.clone(), baseline.clone());
            std::thread::spawn(move || {
                let result = client(i, addr, &config, &load, &baseline);
                if let Err(e) = &result {
                    load.failures
                        .lock()
                        .unwrap()
                        .push(format!("client {i}: {e}"));
                }
                result.ok()
            })
        })
        .collect();
    load.wait_for("every client under way", |l| {
        l.rounds().iter().all(|&r| r > 0)
    });

    for (n, pair) in pairs.iter().enumerate().skip(1) {
        install(how, dir.path(), n, pair);
        let new = der(&pair.cert_pem);
        load.wait_for(&format!("renewal {n} served to a new connection"), |l| {
            l.served.lock().unwrap().contains_key(&new)
        });
        // Every client goes twice more round its kept connection and new ones.
        let seen = load.rounds();
        load.wait_for(&format!("two more rounds after renewal {n}"), |l| {
            l.rounds()
                .iter()
                .zip(&seen)
                .all(|(now, then)| *now >= then + 2)
        });
    }
    load.stop.store(true, Ordering::SeqCst);
    let kept: Vec<Option<Conn>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let failures = load.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{failures:#?}");
    // The kept connections still speak with the certificate they started with.
    for mut conn in kept.into_iter().map(Option::unwrap) {
        assert_eq!(conn.peer_cert(), first);
        assert_eq!(ask(&mut conn, REPORT, &baseline), Ok(()));
    }
    let last = der(&pairs[3].cert_pem);
    assert_eq!(Conn::open(addr, config).unwrap().peer_cert(), last);
    let connections_by_cert = load.served.lock().unwrap();
    for (n, pair) in pairs.iter().enumerate() {
        assert!(
            connections_by_cert.contains_key(&der(&pair.cert_pem)),
            "certificate {n} never served"
        );
    }
}

#[test]
fn a_secret_volume_renewal_under_load_loses_no_request() {
    rotation_under_load(Renewal::SecretVolume);
}

#[test]
fn a_certificate_rewritten_in_place_under_load_loses_no_request() {
    rotation_under_load(Renewal::PlainFiles);
}

// ---------------------------------------------------------------------------------------------
// The webhook's ConfigMap and IngressClass reflectors against an API server on 127.0.0.1 that
// goes away and comes back (real time: a 5 s outage; the longer ones are in the controller's
// fault tests, on a mocked clock, with the same backoff).

fn controller_configmap(snippet: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
        "data": {"allow-snippet-annotations": "true", "location-snippet": snippet}})
}

/// The API server stops for 5 s (connections refused, open watches closed) and comes back
/// having forgotten its watch history (every watch from before gets 410). A change made right
/// then reaches the cache within 10 s, through a re-list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configmap_cache_catches_up_within_10_s_after_the_api_server_returns() {
    use common::fake_api::FakeApi;
    let api = FakeApi::start_new(Duration::from_secs(3600)).await;
    api.put("configmaps", controller_configmap("# before\n"));
    let cache = ConfigMapCache::watch(
        api.client(),
        vec![("ingress-nginx".into(), "ingress-nginx-controller".into())],
    );
    let has = |marker: &'static str| {
        move |s: &Arc<snippet_guard::k8s::configmap_cache::Snapshot>| {
            s.synced && s.objects.iter().any(|o| o.json.contains(marker))
        }
    };
    tokio::time::timeout(TIMEOUT, cache.wait_for(has("# before")))
        .await
        .expect("synced");
    api.stop();
    let outage_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    api.start().await;
    let back = Instant::now();
    api.put("configmaps", controller_configmap("# after\n"));
    tokio::time::timeout(TIMEOUT, cache.wait_for(has("# after")))
        .await
        .expect("the change arrives");
    let recovery = back.elapsed();
    assert!(recovery <= Duration::from_secs(10), "{recovery:?}");
    assert!(cache.is_synced());
    // What the server saw while it was down cannot be seen; what it saw after: a watch from
    // before (410), a re-list, a watch.
    let s = api.store();
    let after: Vec<&String> = s
        .requests
        .iter()
        .filter(|(t, r)| *t >= back && r.contains("configmaps"))
        .map(|(_, r)| r)
        .collect();
    assert!(
        after.iter().any(|r| r.starts_with("LIST")),
        "re-listed after the restart: {after:?}"
    );
    eprintln!(
        "outage {:?}; the change reached the cache {recovery:?} after the API server returned",
        back - outage_started
    );
}
