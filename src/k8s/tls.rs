//! The webhook's serving certificate: rustls (ring provider, TLS 1.2 and 1.3 only) with a
//! certificate resolver whose key pair is swapped in place, so a renewed certificate reaches the
//! next handshake without a restart.
//!
//! [`watch_files`] polls the PEM files. A Kubernetes Secret mounted as a directory is updated by
//! writing a new timestamped directory and atomically swapping the `..data` symlink that
//! `tls.crt` and `tls.key` point through; inotify on the file would miss that, reading the files
//! again does not. A new pair that does not parse or whose key does not match the certificate is
//! rejected and the previous one kept. [`self_signed`] mints a throwaway CA and serving
//! certificate for `--self-signed`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::k8s::webhook::{Error, Result};

/// The current serving certificate; the rustls certificate resolver of the server.
pub struct CertStore {
    current: RwLock<Option<Arc<CertifiedKey>>>,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("loaded", &self.is_loaded())
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

impl CertStore {
    /// An empty store: handshakes fail until a certificate is loaded.
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(None),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }

    /// Whether a certificate is loaded (part of readiness).
    #[must_use]
    pub fn is_loaded(&self) -> bool {
        self.current().is_some()
    }

    /// The certificate served to the next handshake.
    #[must_use]
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Parse a PEM certificate chain and key; on success they serve the next handshake, on
    /// error the previous pair stays.
    pub fn load_pem(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<()> {
        let key = certified_key(&self.provider, cert_pem, key_pem)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(key));
        Ok(())
    }

    /// A rustls server configuration that resolves certificates from this store: TLS 1.3 and
    /// 1.2 only, no client authentication, ALPN `http/1.1`.
    #[must_use]
    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// Parse and check a PEM certificate chain (leaf first) and its private key.
pub fn certified_key(
    provider: &CryptoProvider,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<CertifiedKey> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::TlsInvalid(format!("certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(Error::TlsInvalid(
            "the certificate file holds no CERTIFICATE block".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| Error::TlsInvalid(format!("key file: {e}")))?;
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| Error::TlsInvalid(format!("certificate and key: {e}")))
}

async fn read(path: &Path) -> Result<Vec<u8>> {
    tokio::fs::read(path)
        .await
        .map_err(|source| Error::TlsRead {
            path: path.display().to_string(),
            source,
        })
}

async fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    Ok((read(cert).await?, read(key).await?))
}

/// Where the certificate and key are, and how often to look at them.
#[derive(Debug, Clone)]
pub struct PemFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub interval: Duration,
}

/// Load the files into `store` now and again whenever their content changes; runs until
/// dropped. `on_load` hears of each load attempt (for the metrics).
///
/// A pair read while a non-atomic rotation is half done (new certificate, old key) fails the
/// key check; it is read once more after a short pause before the failure is reported.
pub async fn watch_files(
    store: Arc<CertStore>,
    files: PemFiles,
    on_load: impl Fn(std::result::Result<(), &Error>) + Send + Sync + 'static,
) {
    let mut seen: Option<(Vec<u8>, Vec<u8>)> = None;
    let mut last_error: Option<String> = None;
    loop {
        match read_pair(&files.cert, &files.key).await {
            Ok(pair) if seen.as_ref() != Some(&pair) => {
                let mut pair = pair;
                let mut result = store.load_pem(&pair.0, &pair.1);
                if result.is_err() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if let Ok(again) = read_pair(&files.cert, &files.key).await {
                        result = store.load_pem(&again.0, &again.1);
                        pair = again;
                    }
                }
                match &result {
                    Ok(()) => tracing::info!(
                        cert = %files.cert.display(),
                        key = %files.key.display(),
                        "serving certificate loaded"
                    ),
                    Err(e) if store.is_loaded() => tracing::error!(
                        error = %e,
                        cert = %files.cert.display(),
                        "new certificate rejected; still serving the previous one"
                    ),
                    Err(e) => tracing::error!(
                        error = %e,
                        cert = %files.cert.display(),
                        "no usable serving certificate; not ready"
                    ),
                }
                on_load(result.as_ref().copied());
                seen = Some(pair);
                last_error = None;
            }
            Ok(_) => {}
            Err(e) => {
                let text = e.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::error!(error = %text, "cannot read the serving certificate; keeping the current one");
                    on_load(Err(&e));
                    last_error = Some(text);
                }
            }
        }
        tokio::time::sleep(files.interval).await;
    }
}

/// A throwaway CA and a serving certificate it signed, in PEM.
#[derive(Clone)]
pub struct SelfSigned {
    /// The CA certificate: the `caBundle` of a webhook configuration (base64 of this).
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfSigned").finish_non_exhaustive()
    }
}

/// Mint a CA and a serving certificate for `sans` (DNS names, or IP addresses such as
/// `127.0.0.1`); the CA key is dropped, so nothing else can ever be signed with it.
pub fn self_signed(sans: &[String]) -> Result<SelfSigned> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().map_err(Error::SelfSigned)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(Error::SelfSigned)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // A name of its own, so that a client trusting two throwaway CAs (before and after a
    // rotation) picks the right one by subject.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("snippet-guard throwaway CA {stamp:x}"),
    );
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(Error::SelfSigned)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().map_err(Error::SelfSigned)?;
    let mut leaf = CertificateParams::new(sans.to_vec()).map_err(Error::SelfSigned)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "snippet-guard webhook");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let cert = leaf.signed_by(&key, &issuer).map_err(Error::SelfSigned)?;
    Ok(SelfSigned {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_pair_loads_and_a_mismatched_one_is_refused_keeping_the_old() {
        let a = self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        let b = self_signed(&["localhost".into()]).unwrap();
        let store = CertStore::new();
        assert!(!store.is_loaded());
        store
            .load_pem(a.cert_pem.as_bytes(), a.key_pem.as_bytes())
            .unwrap();
        let first = store.current().unwrap();
        let err = store
            .load_pem(a.cert_pem.as_bytes(), b.key_pem.as_bytes())
            .unwrap_err();
        assert!(err.to_string().contains("certificate and key"), "{err}");
        assert!(Arc::ptr_eq(&first, &store.current().unwrap()));
        let err = store.load_pem(b"garbage", b"garbage").unwrap_err();
        assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
    }
}
