//! Shared by the HTTPS tests of the webhook (`webhook_https.rs`, `webhook_faults.rs`): a
//! throwaway CA and serving certificate, a blocking HTTP/1.1 client over rustls that trusts only
//! that CA, the server in-process on its own tokio runtime, and the `snippet-guard` binary.
//! Every wait is bounded.

// Each test crate uses its own part of this module.
#![allow(dead_code)]

pub mod fake_api;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use snippet_guard::Settings;
use snippet_guard::k8s::configmap_cache::ConfigMapCache;
use snippet_guard::k8s::tls::{self, CertStore, SelfSigned};
use snippet_guard::k8s::webhook::metrics::Metrics;
use snippet_guard::k8s::webhook::{self, Mode, Policy, Running, ServerOptions, State};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/admission");
/// Upper bound of every socket operation and of every wait for something that should happen
/// soon. Generous: the tests run in parallel on a loaded machine.
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client that trusts only the given CAs.
pub fn client_config(
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

pub fn trusting(cas: &[&str]) -> Arc<ClientConfig> {
    client_config(cas, rustls::DEFAULT_VERSIONS)
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A blocking HTTP/1.1 client on one TLS connection.
pub struct Conn {
    pub tls: StreamOwned<ClientConnection, TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr, config: Arc<ClientConfig>) -> io::Result<Self> {
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
    pub fn peer_cert(&self) -> Vec<u8> {
        self.tls.conn.peer_certificates().unwrap()[0].to_vec()
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tls.write_all(bytes)?;
        self.tls.flush()
    }

    pub fn head(method: &str, path: &str, extra: &str) -> String {
        format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\n{extra}\r\n")
    }

    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<Response> {
        let extra = format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        );
        let mut bytes = Self::head(method, path, &extra).into_bytes();
        bytes.extend_from_slice(body);
        self.send(&bytes)?;
        self.read_response()
    }

    pub fn read_head(&mut self) -> io::Result<(u16, Vec<(String, String)>)> {
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

    pub fn read_response(&mut self) -> io::Result<Response> {
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

/// `GET /metrics` in plain HTTP.
pub fn metrics_at(addr: SocketAddr) -> String {
    let mut tcp = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

/// The value of the metric sample `line_start` (name and labels, as printed), 0 when absent.
pub fn sample(metrics: &str, line_start: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start) && l[line_start.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// The webhook on its own tokio runtime, on 127.0.0.1 ports chosen by the kernel.
pub struct TestServer {
    pub rt: tokio::runtime::Runtime,
    pub running: Option<Running>,
    pub state: Arc<State>,
}

impl TestServer {
    pub fn start(
        mode: Mode,
        certs: Arc<CertStore>,
        cache: impl FnOnce() -> ConfigMapCache,
    ) -> Self {
        Self::start_with(mode, certs, cache, 3 * 1024 * 1024)
    }

    pub fn start_with(
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
            draining: Arc::default(),
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

    pub fn addr(&self) -> SocketAddr {
        self.running.as_ref().unwrap().addr
    }

    pub fn metrics(&self) -> String {
        metrics_at(self.running.as_ref().unwrap().metrics_addr.unwrap())
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

pub fn minted() -> (SelfSigned, Arc<CertStore>) {
    let m = tls::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    let store = CertStore::new();
    store
        .load_pem(m.cert_pem.as_bytes(), m.key_pem.as_bytes())
        .unwrap();
    (m, store)
}

/// POST a fixture to `/validate`; the `response` of the 200 review.
pub fn validate(conn: &mut Conn, fixture_name: &str) -> serde_json::Value {
    let r = conn
        .request("POST", "/validate", &fixture(fixture_name))
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()["response"].clone()
}

/// Lay out `dir` as kubelet mounts a Secret: `tls.crt -> ..data/tls.crt`, `..data -> ..<stamp>`,
/// and swap `..data` atomically to rotate.
pub fn mount_secret(dir: &Path, stamp: &str, cert: &str, key: &str) {
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

pub fn der(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// Connect until the server presents `want` (bounded).
pub fn wait_for_cert(addr: SocketAddr, config: &Arc<ClientConfig>, want: &[u8]) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if Conn::open(addr, config.clone()).is_ok_and(|c| c.peer_cert() == want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The `snippet-guard` binary, killed when dropped; its stderr lines arrive on a channel.
pub struct Binary {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `snippet-guard webhook` ([`Binary::webhook`]).
pub struct WebhookBinary {
    pub bin: Binary,
    /// The HTTPS port.
    pub addr: SocketAddr,
    /// The plain metrics port.
    pub metrics_addr: SocketAddr,
    /// A client configuration that trusts only the webhook's throwaway CA.
    pub config: Arc<ClientConfig>,
}

impl Binary {
    pub fn spawn(args: &[&str]) -> Self {
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

    /// `snippet-guard webhook` with a throwaway certificate on 127.0.0.1 and `extra` arguments,
    /// once it listens.
    pub fn webhook(extra: &[&str]) -> WebhookBinary {
        // The CA is read once the webhook listens; the folder may go with this function.
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.crt");
        let mut args = vec![
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
        ];
        args.extend_from_slice(extra);
        let bin = Self::spawn(&args);
        let listening = bin.wait_log("webhook listening");
        let address =
            |key: &str| -> SocketAddr { listening[key].as_str().unwrap().parse().unwrap() };
        WebhookBinary {
            addr: address("addr"),
            metrics_addr: address("metrics_addr"),
            config: trusting(&[&std::fs::read_to_string(&ca_file).unwrap()]),
            bin,
        }
    }

    /// Wait (bounded) for the process to exit on its own.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The next JSON log line whose message is `message`.
    pub fn wait_log(&self, message: &str) -> serde_json::Value {
        let deadline = Instant::now() + TIMEOUT;
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
