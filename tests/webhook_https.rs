//! The webhook over real HTTPS on 127.0.0.1: a throwaway CA and serving certificate, a client
//! that trusts only that CA, and the server as `snippet-guard webhook` runs it (in-process, or
//! the binary itself for SIGTERM). Every wait is bounded.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use snippet_guard::Settings;
use snippet_guard::k8s::configmap_cache::ConfigMapCache;
use snippet_guard::k8s::tls::{self, CertStore, PemFiles, SelfSigned};
use snippet_guard::k8s::webhook::metrics::Metrics;
use snippet_guard::k8s::webhook::{self, Mode, Policy, Running, ServerOptions, State};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/admission");
const TIMEOUT: Duration = Duration::from_secs(10);

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client that trusts only the given CAs.
fn client_config(
    cas: &[&str],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for pem in cas {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Every connection a full handshake: a resumed session presents no certificate, and
    // rustls then reports the one of the session it resumed.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

fn trusting(cas: &[&str]) -> Arc<ClientConfig> {
    client_config(cas, rustls::DEFAULT_VERSIONS)
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A blocking HTTP/1.1 client on one TLS connection.
struct Conn {
    tls: StreamOwned<ClientConnection, TcpStream>,
}

impl Conn {
    fn open(addr: SocketAddr, config: Arc<ClientConfig>) -> io::Result<Self> {
        let tcp = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        tcp.set_read_timeout(Some(TIMEOUT))?;
        tcp.set_write_timeout(Some(TIMEOUT))?;
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(Self { tls })
    }

    /// DER of the certificate the server presented.
    fn peer_cert(&self) -> Vec<u8> {
        self.tls.conn.peer_certificates().unwrap()[0].to_vec()
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tls.write_all(bytes)?;
        self.tls.flush()
    }

    fn head(method: &str, path: &str, extra: &str) -> String {
        format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\n{extra}\r\n")
    }

    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<Response> {
        let extra = format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        );
        let mut bytes = Self::head(method, path, &extra).into_bytes();
        bytes.extend_from_slice(body);
        self.send(&bytes)?;
        self.read_response()
    }

    fn read_head(&mut self) -> io::Result<(u16, Vec<(String, String)>)> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if self.tls.read(&mut byte)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                ));
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).map_err(io::Error::other)?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line in {head:?}")))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok((status, headers))
    }

    fn read_response(&mut self) -> io::Result<Response> {
        let (status, headers) = self.read_head()?;
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(|| io::Error::other("response without content-length"))?;
        let mut body = vec![0; len];
        self.tls.read_exact(&mut body)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// The webhook on its own tokio runtime, on 127.0.0.1 ports chosen by the kernel.
struct TestServer {
    rt: tokio::runtime::Runtime,
    running: Option<Running>,
    state: Arc<State>,
}

impl TestServer {
    fn start(mode: Mode, certs: Arc<CertStore>, cache: impl FnOnce() -> ConfigMapCache) -> Self {
        Self::start_with(mode, certs, cache, 3 * 1024 * 1024)
    }

    fn start_with(
        mode: Mode,
        certs: Arc<CertStore>,
        cache: impl FnOnce() -> ConfigMapCache,
        max_body_bytes: usize,
    ) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cache = {
            let _guard = rt.enter();
            cache()
        };
        let state = Arc::new(State {
            policy: Policy {
                mode,
                settings: Settings::default(),
                only_new_findings: false,
            },
            cache,
            certs,
            metrics: Arc::new(Metrics::new()),
            max_body_bytes,
            body_read_timeout: Duration::from_millis(300),
        });
        let options = ServerOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
            shutdown_timeout: Duration::from_secs(5),
        };
        let running = rt
            .block_on(webhook::start(state.clone(), &options))
            .unwrap();
        Self {
            rt,
            running: Some(running),
            state,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.running.as_ref().unwrap().addr
    }

    fn metrics(&self) -> String {
        let addr = self.running.as_ref().unwrap().metrics_addr.unwrap();
        let mut tcp = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
        tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        tcp.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        out
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut running) = self.running.take() {
            running.shutdown();
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(TIMEOUT, running.wait()).await });
        }
    }
}

fn minted() -> (SelfSigned, Arc<CertStore>) {
    let m = tls::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    let store = CertStore::new();
    store
        .load_pem(m.cert_pem.as_bytes(), m.key_pem.as_bytes())
        .unwrap();
    (m, store)
}

fn validate(conn: &mut Conn, fixture_name: &str) -> serde_json::Value {
    let r = conn
        .request("POST", "/validate", &fixture(fixture_name))
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()["response"].clone()
}

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

/// Lay out `dir` as kubelet mounts a Secret: `tls.crt -> ..data/tls.crt`, `..data -> ..<stamp>`,
/// and swap `..data` atomically to rotate.
fn mount_secret(dir: &Path, stamp: &str, cert: &str, key: &str) {
    let data = dir.join(format!("..{stamp}"));
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("tls.crt"), cert).unwrap();
    std::fs::write(data.join("tls.key"), key).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{stamp}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for f in ["tls.crt", "tls.key"] {
        let link = dir.join(f);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{f}"), &link).unwrap();
        }
    }
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// Connect until the server presents `want` (bounded).
fn wait_for_cert(addr: SocketAddr, config: &Arc<ClientConfig>, want: &[u8]) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if Conn::open(addr, config.clone()).is_ok_and(|c| c.peer_cert() == want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
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

    let list = server.rt.block_on(async {
        let (request, send) = tokio::time::timeout(TIMEOUT, api.next_request())
            .await
            .expect("the cache lists the controller ConfigMap")
            .unwrap();
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

struct Child_ {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Child_ {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Child_ {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_snippet-guard"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next JSON log line whose message is `message`.
    fn wait_log(&self, message: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no `{message}` log line"));
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == message
            {
                return v;
            }
        }
    }
}

#[test]
fn sigterm_during_a_burst_finishes_every_request_in_flight_and_exits_0() {
    const CLIENTS: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let ca_file: PathBuf = dir.path().join("ca.crt");
    let child = Child_::spawn(&[
        "webhook",
        "--self-signed",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--ca-bundle-out",
        ca_file.to_str().unwrap(),
        "--log-format",
        "json",
    ]);
    let listening = child.wait_log("webhook listening");
    let addr: SocketAddr = listening["addr"].as_str().unwrap().parse().unwrap();
    let config = trusting(&[&std::fs::read_to_string(&ca_file).unwrap()]);
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
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}
