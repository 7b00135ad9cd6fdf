//! The webhook over real HTTPS on 127.0.0.1: a throwaway CA and serving certificate, a client
//! that trusts only that CA, and the server as `snippet-guard webhook` runs it (in-process, or
//! the binary itself for SIGTERM). Every wait is bounded. The helpers are in `common/`; hostile
//! clients and certificate rotation under load are in `webhook_faults.rs`.

mod common;

use std::io;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{
    Binary, Conn, TIMEOUT, TestServer, client_config, der, fixture, minted, mount_secret, trusting,
    validate, wait_for_cert,
};
use snippet_guard::k8s::configmap_cache::ConfigMapCache;
use snippet_guard::k8s::tls::{self, CertStore, PemFiles};
use snippet_guard::k8s::webhook::Mode;
use snippet_guard::k8s::webhook::metrics::Metrics;

#[test]
fn allow_deny_and_warnings_over_https_keep_alive() {
    let (ca, certs) = minted();
    let server = TestServer::start(Mode::Enforce, certs, ConfigMapCache::empty);
    let mut conn = Conn::open(server.addr(), trusting(&[&ca.ca_pem])).unwrap();

    let allowed = validate(&mut conn, "create-fixed.json");
    assert_eq!(allowed["allowed"], true);
    assert_eq!(allowed["uid"], "1a6b1f57-2d1c-4a1a-9d43-2c7f5a0b8e02");
    assert!(allowed.get("warnings").is_none());

    let denied = validate(&mut conn, "create-original-report.json");
    assert_eq!(denied["allowed"], false);
    let message = denied["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("redundant-forwarded-proto: X-Forwarded-Proto is already set"),
        "{message}"
    );
    assert!(
        message.contains(
            "(annotation nginx.ingress.kubernetes.io/configuration-snippet, line 2). Fix: "
        )
    );

    let warned = validate(&mut conn, "create-warning-only.json");
    assert_eq!(warned["allowed"], true);
    assert!(
        warned["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("duplicate-snippet-header:")
    );

    let metrics = server.metrics();
    for line in [
        r#"snippet_guard_webhook_admissions_total{operation="CREATE",kind="Ingress",decision="allow"} 1"#,
        r#"snippet_guard_webhook_admissions_total{operation="CREATE",kind="Ingress",decision="deny"} 1"#,
        r#"snippet_guard_webhook_admissions_total{operation="CREATE",kind="Ingress",decision="warn"} 1"#,
        r#"snippet_guard_webhook_findings_total{rule="redundant-forwarded-proto",severity="error",decision="deny"} 1"#,
        r#"snippet_guard_webhook_findings_total{rule="duplicate-snippet-header",severity="warning",decision="warn"} 1"#,
        "snippet_guard_webhook_admission_duration_seconds_count 3",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
}

#[test]
fn warn_mode_over_https() {
    let (ca, certs) = minted();
    let server = TestServer::start(Mode::Warn, certs, ConfigMapCache::empty);
    let mut conn = Conn::open(server.addr(), trusting(&[&ca.ca_pem])).unwrap();
    let r = validate(&mut conn, "create-original-report.json");
    assert_eq!(r["allowed"], true);
    let warnings = r["warnings"].as_array().unwrap();
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("redundant-forwarded-proto:")
    );
}

#[test]
fn garbage_gets_400_and_the_server_keeps_serving() {
    let (ca, certs) = minted();
    let server = TestServer::start(Mode::Enforce, certs, ConfigMapCache::empty);
    let mut conn = Conn::open(server.addr(), trusting(&[&ca.ca_pem])).unwrap();
    for name in [
        "malformed/garbage.txt",
        "malformed/truncated.json",
        "malformed/no-request.json",
    ] {
        let r = conn.request("POST", "/validate", &fixture(name)).unwrap();
        assert_eq!(r.status, 400, "{name}");
        let body = r.json();
        assert_eq!(body["response"]["allowed"], false);
        assert_eq!(body["response"]["status"]["reason"], "InvalidRequest");
        assert!(
            !body["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .is_empty()
        );
    }
    let r = conn
        .request("POST", "/validate", b"\xff\xfe not utf-8")
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("not a valid AdmissionReview"));
    // Same connection, still answering.
    assert_eq!(validate(&mut conn, "create-fixed.json")["allowed"], true);
    let metrics = server.metrics();
    assert!(
        metrics.contains(r#"snippet_guard_webhook_errors_total{error="invalid_review"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"snippet_guard_webhook_errors_total{error="missing_request"} 1"#),
        "{metrics}"
    );
}

#[test]
fn an_oversized_body_gets_413() {
    let (ca, certs) = minted();
    let server = TestServer::start(Mode::Enforce, certs.clone(), ConfigMapCache::empty);
    let mut conn = Conn::open(server.addr(), trusting(&[&ca.ca_pem])).unwrap();
    // Declared larger than the default 3 MiB: refused from the header, before any body byte.
    let head = Conn::head(
        "POST",
        "/validate",
        &format!("content-length: {}\r\n", 3 * 1024 * 1024 + 1),
    );
    conn.send(head.as_bytes()).unwrap();
    let r = conn.read_response().unwrap();
    assert_eq!(r.status, 413);
    assert!(String::from_utf8_lossy(&r.body).contains("larger than 3145728 bytes"));
    drop(server);

    // Chunked, so only counting can tell: a 1 KiB limit and a 2 KiB body.
    let server = TestServer::start_with(Mode::Enforce, certs, ConfigMapCache::empty, 1024);
    let mut conn = Conn::open(server.addr(), trusting(&[&ca.ca_pem])).unwrap();
    let mut bytes = Conn::head("POST", "/validate", "transfer-encoding: chunked\r\n").into_bytes();
    for _ in 0..2 {
        bytes.extend_from_slice(format!("{:x}\r\n", 1024).as_bytes());
        bytes.extend_from_slice(&[b' '; 1024]);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    conn.send(&bytes).unwrap();
    let r = conn.read_response().unwrap();
    assert_eq!(r.status, 413);
    assert!(
        server
            .metrics()
            .contains(r#"snippet_guard_webhook_errors_total{error="body_too_large"} 1"#)
    );
}

#[test]
fn a_body_that_never_arrives_gets_400() {
    let (ca, certs) = minted();
    let server = TestServer::start(Mode::Enforce, certs, ConfigMapCache::empty);
    let mut conn = Conn::open(server.addr(), trusting(&[&ca.ca_pem])).unwrap();
    // The test server gives a body 300 ms.
    conn.send(Conn::head("POST", "/validate", "content-length: 100\r\n").as_bytes())
        .unwrap();
    conn.send(b"{\"kind\":").unwrap();
    let r = conn.read_response().unwrap();
    assert_eq!(r.status, 400);
    assert!(
        String::from_utf8_lossy(&r.body)
            .contains("cannot read the request body: not received within")
    );
}

#[test]
fn tls_1_2_and_1_3_are_served_and_an_unknown_ca_is_refused() {
    let (ca, certs) = minted();
    let server = TestServer::start(Mode::Enforce, certs, ConfigMapCache::empty);
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut conn = Conn::open(server.addr(), client_config(&[&ca.ca_pem], &[version])).unwrap();
        assert_eq!(conn.tls.conn.protocol_version(), Some(version.version));
        assert_eq!(conn.request("GET", "/healthz", b"").unwrap().status, 200);
    }
    let other = tls::self_signed(&["localhost".into()]).unwrap();
    let err = Conn::open(server.addr(), trusting(&[&other.ca_pem]))
        .err()
        .expect("untrusted");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[test]
fn a_rotated_certificate_is_served_to_the_next_connection_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = tls::self_signed(&["localhost".into()]).unwrap();
    let second = tls::self_signed(&["localhost".into()]).unwrap();
    mount_secret(dir.path(), "2025_01_01", &first.cert_pem, &first.key_pem);

    let certs = CertStore::new();
    let metrics = Arc::new(Metrics::new());
    let server = TestServer::start(Mode::Enforce, certs.clone(), ConfigMapCache::empty);
    let files = PemFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
        interval: Duration::from_millis(50),
    };
    let m = metrics.clone();
    server
        .rt
        .spawn(tls::watch_files(certs.clone(), files, move |r| {
            m.tls_reload(r.is_ok());
        }));
    let both = trusting(&[&first.ca_pem, &second.ca_pem]);
    assert!(wait_for_cert(server.addr(), &both, &der(&first.cert_pem)));
    // A connection opened before the rotation keeps working after it.
    let mut old_conn = Conn::open(server.addr(), both.clone()).unwrap();

    mount_secret(dir.path(), "2025_02_01", &second.cert_pem, &second.key_pem);
    assert!(
        wait_for_cert(server.addr(), &both, &der(&second.cert_pem)),
        "the rotated certificate was not served"
    );
    assert_eq!(old_conn.peer_cert(), der(&first.cert_pem));
    assert_eq!(
        validate(&mut old_conn, "create-fixed.json")["allowed"],
        true
    );

    // A broken renewal (key of another certificate) is refused; the last good one stays.
    let reloads = |m: &Metrics, result: &str| {
        m.encode()
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "snippet_guard_webhook_tls_reloads_total{{result=\"{result}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert_eq!(reloads(&metrics, "error"), 0);
    mount_secret(dir.path(), "2025_03_01", &first.cert_pem, &second.key_pem);
    let deadline = Instant::now() + TIMEOUT;
    while reloads(&metrics, "error") == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(reloads(&metrics, "error"), 1);
    let conn = Conn::open(server.addr(), both.clone()).unwrap();
    assert_eq!(conn.peer_cert(), der(&second.cert_pem));
    assert_eq!(reloads(&metrics, "ok"), 2);
}

#[test]
fn readiness_waits_for_the_certificate_and_the_configmap_cache() {
    use kube::client::Body;
    let (ca, certs) = minted();
    // Not ready until the API server answers the first list.
    let (service, mut api) = tower_test::mock::pair::<http::Request<Body>, http::Response<Body>>();
    let server = TestServer::start(Mode::Enforce, certs, || {
        let client = kube::Client::new(service, "default");
        ConfigMapCache::watch(
            client,
            vec![("ingress-nginx".into(), "ingress-nginx-controller".into())],
        )
    });
    let mut conn = Conn::open(server.addr(), trusting(&[&ca.ca_pem])).unwrap();
    assert_eq!(conn.request("GET", "/healthz", b"").unwrap().status, 200);
    let r = conn.request("GET", "/readyz", b"").unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "not ready: ConfigMap cache not synced\n"
    );

    // The IngressClass watch runs beside the ConfigMap's (in either order): its list gets an
    // empty answer and its watch is held open; the ConfigMap list is the one this test answers.
    let mut held = Vec::new();
    let list = server.rt.block_on(async {
        let (request, send) = loop {
            let (request, send) = tokio::time::timeout(TIMEOUT, api.next_request())
                .await
                .expect("the cache lists the controller ConfigMap")
                .unwrap();
            if request.uri().path() != "/apis/networking.k8s.io/v1/ingressclasses" {
                break (request, send);
            }
            if request
                .uri()
                .query()
                .unwrap_or_default()
                .contains("watch=true")
            {
                held.push(send);
            } else {
                let empty = serde_json::json!({"apiVersion": "networking.k8s.io/v1",
                    "kind": "IngressClassList", "metadata": {"resourceVersion": "1"}, "items": []});
                send.send_response(
                    http::Response::builder()
                        .body(Body::from(serde_json::to_vec(&empty).unwrap()))
                        .unwrap(),
                );
            }
        };
        let list = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMapList",
            "metadata": {"resourceVersion": "100"},
            "items": [serde_json::from_slice::<serde_json::Value>(
                &fixture("context/ingress-nginx-controller-snippets-off.json")).unwrap()],
        });
        send.send_response(
            http::Response::builder()
                .body(Body::from(serde_json::to_vec(&list).unwrap()))
                .unwrap(),
        );
        request.uri().to_string()
    });
    assert!(
        list.starts_with("/api/v1/namespaces/ingress-nginx/configmaps?"),
        "{list}"
    );
    assert!(
        list.contains("fieldSelector=metadata.name%3Dingress-nginx-controller"),
        "{list}"
    );
    let deadline = Instant::now() + TIMEOUT;
    let mut status = 0;
    while Instant::now() < deadline {
        status = conn.request("GET", "/readyz", b"").unwrap().status;
        if status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status, 200);
    // And the cached ConfigMap is used: snippets are off, so the original report passes.
    assert_eq!(
        validate(&mut conn, "create-original-report.json")["allowed"],
        true
    );
    assert_eq!(server.state.cache.snapshot().objects.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// SIGTERM, on the real binary.

#[test]
fn sigterm_during_a_burst_finishes_every_request_in_flight_and_exits_0() {
    const CLIENTS: usize = 16;
    let common::WebhookBinary {
        bin: mut child,
        addr,
        config,
        ..
    } = Binary::webhook(&[]);
    let body = fixture("create-original-report.json");
    let (half_a, half_b) = body.split_at(body.len() / 2);

    let in_flight = Arc::new(Barrier::new(CLIENTS + 1));
    let go = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (config, in_flight, go) = (config.clone(), in_flight.clone(), go.clone());
            let (half_a, half_b) = (half_a.to_vec(), half_b.to_vec());
            let full = body.clone();
            std::thread::spawn(move || -> Result<serde_json::Value, String> {
                let mut passed = false;
                let run = || -> io::Result<serde_json::Value> {
                    let mut conn = Conn::open(addr, config)?;
                    // One answered request on the keep-alive connection first.
                    let first = conn.request("POST", "/validate", &full)?;
                    if first.status != 200 {
                        return Err(io::Error::other(format!("status {}", first.status)));
                    }
                    // Then one in flight: `Expect: 100-continue` proves the server has read
                    // the head and the handler is reading the body.
                    let extra = format!(
                        "content-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n",
                        full.len()
                    );
                    conn.send(Conn::head("POST", "/validate", &extra).as_bytes())?;
                    let (status, _) = conn.read_head()?;
                    if status != 100 {
                        return Err(io::Error::other(format!("status {status}, not 100")));
                    }
                    conn.send(&half_a)?;
                    in_flight.wait();
                    go.wait();
                    passed = true;
                    conn.send(&half_b)?;
                    let r = conn.read_response()?;
                    if r.status != 200 {
                        return Err(io::Error::other(format!("status {}", r.status)));
                    }
                    Ok(r.json())
                };
                let result = run();
                // Do not leave the others waiting at the barriers this thread never reached.
                if !passed {
                    in_flight.wait();
                    go.wait();
                }
                result.map_err(|e| e.to_string())
            })
        })
        .collect();

    in_flight.wait();
    let pid = child.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    child.wait_log("shutting down: no new connections, finishing requests in flight");
    // The listener is closed: a new connection is refused (or the handshake fails).
    let deadline = Instant::now() + TIMEOUT;
    while Conn::open(addr, config.clone()).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    go.wait();

    for c in clients {
        let review = c.join().unwrap().expect("a request in flight was lost");
        assert_eq!(review["response"]["allowed"], false);
    }
    child.wait_log("stopped");
    assert_eq!(child.wait_exit().code(), Some(0));
}

/// `--shutdown-delay`: after SIGTERM the webhook turns readiness off but keeps answering every
/// review (new connections and keep-alive ones) until the delay is over; only then does it
/// close the listener. Clients hammer it from before the signal to the end of the delay: no
/// request may fail meanwhile.
#[test]
fn sigterm_with_a_shutdown_delay_keeps_serving_under_load_until_the_delay_is_over() {
    const CLIENTS: usize = 4;
    let common::WebhookBinary {
        bin: mut child,
        addr,
        config,
        ..
    } = Binary::webhook(&["--shutdown-delay", "2"]);
    let body = fixture("create-original-report.json");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (config, stop, started, body) =
                (config.clone(), stop.clone(), started.clone(), body.clone());
            std::thread::spawn(move || -> (usize, Vec<String>) {
                let (mut ok, mut failed) = (0, Vec::new());
                let mut conn = None;
                started.wait();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Half the clients keep one connection, half open one per request.
                    if i % 2 == 1 || conn.is_none() {
                        conn = match Conn::open(addr, config.clone()) {
                            Ok(c) => Some(c),
                            Err(e) => {
                                failed.push(format!("connect: {e}"));
                                None
                            }
                        };
                    }
                    let Some(c) = conn.as_mut() else { continue };
                    match c.request("POST", "/validate", &body) {
                        Ok(r) if r.status == 200 && r.json()["response"]["allowed"] == false => {
                            ok += 1;
                        }
                        Ok(r) => failed.push(format!("status {}", r.status)),
                        Err(e) => {
                            failed.push(format!("request: {e}"));
                            conn = None;
                        }
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    started.wait();
    std::thread::sleep(Duration::from_millis(200));
    let pid = child.child.id().to_string();
    let signalled = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    child.wait_log("shutdown delay: not ready, still serving reviews");
    // Readiness is off during the delay, while reviews are still answered.
    let mut probe = Conn::open(addr, config.clone()).unwrap();
    let ready = probe.request("GET", "/readyz", b"").unwrap();
    assert_eq!(ready.status, 503);
    // Stop the clients just before the delay ends: until then nothing may fail.
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(signalled.elapsed()));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut served = 0;
    for c in clients {
        let (ok, failed) = c.join().unwrap();
        assert!(failed.is_empty(), "failed during the delay: {failed:?}");
        served += ok;
    }
    assert!(served > 0);
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "the test itself ran late"
    );
    child.wait_log("shutting down: no new connections, finishing requests in flight");
    child.wait_log("stopped");
    println!("{served} reviews served across SIGTERM and the shutdown delay, 0 failed");
    assert_eq!(child.wait_exit().code(), Some(0));
}
