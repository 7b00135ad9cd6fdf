//! A serving certificate the webhook manages itself (`--tls-secret`), as Kyverno does: no
//! certificate in the chart's output, so `helm template` renders the same twice and a GitOps
//! sync rewrites nothing.
//!
//! - The chart renders an `Opaque` Secret without `data` and the ValidatingWebhookConfiguration
//!   without `caBundle`; neither `helm upgrade` nor `kubectl apply`, Argo CD or Flux touch fields
//!   their manifest does not set.
//! - The first replica to start finds the Secret empty, mints a CA and a serving certificate
//!   signed by it, and writes `ca.crt` (the CA bundle), `ca.key`, `tls.crt` and `tls.key` with
//!   the `resourceVersion` it read: when replicas start together one write wins, the others get
//!   409, read again and take what won.
//! - Every replica then makes each webhook's `caBundle` equal to `ca.crt` (update with the
//!   `resourceVersion` read), and serves `tls.crt` through [`CertStore`], swapped in place.
//! - Every `--tls-check-interval` each replica reads the Secret again: it serves a certificate
//!   another replica renewed, renews the serving certificate `--tls-renew-before` its expiry
//!   (or when the DNS names changed), and renews the CA once the CA would expire before a new
//!   serving certificate: the new CA goes first in `ca.crt`, the old one stays after it until
//!   it expires, so pods still serving a certificate of the old CA keep being trusted.
//!   A certificate of a new CA is served only once the `caBundle` holds that CA.
//!
//! RBAC: `get` and `update` on that one Secret and that one ValidatingWebhookConfiguration
//! (`resourceNames`); nothing is created.
//!
//! While no certificate exists yet the API server cannot call the webhook; with the chart's
//! `failurePolicy: Ignore` writes go through unchecked meanwhile, never refused.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::k8s::tls::CertStore;

/// The Secret's keys.
pub const CA_BUNDLE: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";

/// Older CAs kept in the bundle after a CA renewal (while they are valid).
const OLD_CAS_KEPT: usize = 2;

/// Where the certificate lives and how long it lasts.
#[derive(Debug, Clone)]
pub struct ManagedTls {
    pub namespace: String,
    /// The Secret (in `namespace`) that holds the CA and the serving certificate.
    pub secret: String,
    /// The ValidatingWebhookConfiguration whose webhooks get the `caBundle`.
    pub webhook_configuration: String,
    /// DNS names (or IP addresses) of the serving certificate.
    pub sans: Vec<String>,
    pub cert_validity: Duration,
    pub ca_validity: Duration,
    /// Renew the serving certificate this long before it expires.
    pub renew_before: Duration,
}

/// Errors of one pass.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("minting a certificate: {0}")]
    Mint(#[from] rcgen::Error),
    #[error("the Secret's certificate does not load: {0}")]
    Load(String),
    #[error("the Secret changed under every attempt to write it")]
    Contended,
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// The Secret's content, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Material {
    /// The current CA first, then older CAs still trusted.
    pub ca_bundle: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Material").finish_non_exhaustive()
    }
}

impl Material {
    /// The four keys of `secret`, when all are there.
    #[must_use]
    pub fn from_secret(secret: &Secret) -> Option<Self> {
        let data = secret.data.as_ref()?;
        let text = |k: &str| {
            data.get(k)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .filter(|s| !s.trim().is_empty())
        };
        Some(Self {
            ca_bundle: text(CA_BUNDLE)?,
            ca_key: text(CA_KEY)?,
            cert: text(TLS_CRT)?,
            key: text(TLS_KEY)?,
        })
    }

    fn write_to(&self, secret: &mut Secret) {
        let data = secret.data.get_or_insert_default();
        for (k, v) in [
            (CA_BUNDLE, &self.ca_bundle),
            (CA_KEY, &self.ca_key),
            (TLS_CRT, &self.cert),
            (TLS_KEY, &self.key),
        ] {
            data.insert(k.into(), ByteString(v.clone().into_bytes()));
        }
    }
}

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub not_after: SystemTime,
    pub sans: BTreeSet<String>,
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
}

/// The `CERTIFICATE` blocks of a PEM text, each with its own text.
fn pem_blocks(pem: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let Some(end) = rest[start..].find(END) else {
            break;
        };
        let end = start + end + END.len();
        out.push(format!("{}\n", &rest[start..end]));
        rest = &rest[end..];
    }
    out
}

/// The certificates of a PEM bundle, in order, each with its PEM text.
pub fn parse_pem(pem: &str) -> Result<Vec<(String, CertInfo)>, String> {
    let mut out = Vec::new();
    for block in pem_blocks(pem) {
        let der = CertificateDer::from_pem_slice(block.as_bytes()).map_err(|e| e.to_string())?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| e.to_string())?;
        let mut sans = BTreeSet::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(s) => {
                        sans.insert((*s).to_string());
                    }
                    x509_parser::extensions::GeneralName::IPAddress(b) => {
                        let ip = match b.len() {
                            4 => <[u8; 4]>::try_from(*b).map(std::net::IpAddr::from),
                            _ => <[u8; 16]>::try_from(*b).map(std::net::IpAddr::from),
                        };
                        if let Ok(ip) = ip {
                            sans.insert(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let not_after = u64::try_from(cert.validity().not_after.timestamp())
            .map_or(UNIX_EPOCH, |s| UNIX_EPOCH + Duration::from_secs(s));
        let info = CertInfo {
            not_after,
            sans,
            subject: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
        };
        out.push((block, info));
    }
    Ok(out)
}

/// What the Secret needs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Serve what it holds.
    Keep,
    /// A new serving certificate from the current CA (why).
    NewCert(String),
    /// A new CA and a serving certificate from it (why).
    NewCa(String),
}

fn remaining(info: &CertInfo, now: SystemTime) -> Duration {
    info.not_after.duration_since(now).unwrap_or(Duration::ZERO)
}

impl ManagedTls {
    /// Decide what `material` needs at `now`.
    #[must_use]
    pub fn plan(&self, material: Option<&Material>, now: SystemTime) -> Plan {
        let Some(m) = material else {
            return Plan::NewCa("the Secret holds no certificate yet".into());
        };
        let cas = match parse_pem(&m.ca_bundle) {
            Ok(cas) if !cas.is_empty() => cas,
            Ok(_) => return Plan::NewCa(format!("`{CA_BUNDLE}` holds no certificate")),
            Err(e) => return Plan::NewCa(format!("`{CA_BUNDLE}` does not parse: {e}")),
        };
        if rcgen::KeyPair::from_pem(&m.ca_key).is_err() {
            return Plan::NewCa(format!("`{CA_KEY}` does not parse"));
        }
        let ca = &cas[0].1;
        // A serving certificate must not outlive its CA.
        if remaining(ca, now) < self.cert_validity + self.renew_before {
            return Plan::NewCa("the CA expires before a new serving certificate would".into());
        }
        let leaf = match parse_pem(&m.cert) {
            Ok(certs) if !certs.is_empty() => certs[0].1.clone(),
            _ => return Plan::NewCert(format!("`{TLS_CRT}` does not parse")),
        };
        if crate::k8s::tls::certified_key(
            &rustls::crypto::ring::default_provider(),
            m.cert.as_bytes(),
            m.key.as_bytes(),
        )
        .is_err()
        {
            return Plan::NewCert(format!("`{TLS_KEY}` does not match `{TLS_CRT}`"));
        }
        if leaf.issuer != ca.subject {
            return Plan::NewCert("the serving certificate is not from the current CA".into());
        }
        if remaining(&leaf, now) < self.renew_before {
            return Plan::NewCert("the serving certificate expires soon".into());
        }
        let wanted: BTreeSet<String> = self.sans.iter().cloned().collect();
        if leaf.sans != wanted {
            return Plan::NewCert(format!(
                "the serving certificate names {:?}, not {:?}",
                leaf.sans, wanted
            ));
        }
        Plan::Keep
    }

    /// Carry out a plan that is not [`Plan::Keep`].
    pub fn mint(&self, plan: &Plan, old: Option<&Material>, now: SystemTime) -> Result<Material> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let at = |t: SystemTime| {
            let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        };
        // Clocks of the API server and of this pod may differ a little.
        let not_before = at(now.checked_sub(Duration::from_secs(300)).unwrap_or(now));
        let renewing = match (plan, old) {
            (Plan::NewCert(_), Some(m)) => Some(m),
            _ => None,
        };
        let (ca_pem, ca_key_pem, bundle, ca_not_after) = if let Some(m) = renewing {
            let cas = parse_pem(&m.ca_bundle).map_err(Error::Load)?;
            let (ca, info) = cas
                .into_iter()
                .next()
                .ok_or_else(|| Error::Load(format!("`{CA_BUNDLE}` holds no certificate")))?;
            (ca, m.ca_key.clone(), m.ca_bundle.clone(), info.not_after)
        } else {
            let key = KeyPair::generate()?;
            let mut ca = CertificateParams::new(Vec::<String>::new())?;
            ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            let stamp = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            ca.distinguished_name.push(
                DnType::CommonName,
                format!("snippet-guard webhook CA {stamp}"),
            );
            ca.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            ca.not_before = not_before;
            let not_after = now + self.ca_validity;
            ca.not_after = at(not_after);
            let cert = ca.self_signed(&key)?;
            let mut bundle = cert.pem();
            // Older CAs stay trusted until they expire: pods may still serve their
            // certificates.
            if let Some(old) = old.and_then(|m| parse_pem(&m.ca_bundle).ok()) {
                for (pem, info) in old.into_iter().take(OLD_CAS_KEPT) {
                    if info.not_after > now {
                        bundle.push_str(&pem);
                    }
                }
            }
            (cert.pem(), key.serialize_pem(), bundle, not_after)
        };
        let ca_key = KeyPair::from_pem(&ca_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;
        let key = KeyPair::generate()?;
        let mut leaf = CertificateParams::new(self.sans.clone())?;
        leaf.distinguished_name
            .push(DnType::CommonName, "snippet-guard webhook");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        leaf.not_before = not_before;
        leaf.not_after = at((now + self.cert_validity).min(ca_not_after));
        let cert = leaf.signed_by(&key, &issuer)?;
        Ok(Material {
            ca_bundle: bundle,
            ca_key: ca_key_pem,
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// One pass: read the Secret, mint and write what it needs, make the `caBundle` match and
    /// serve the certificate. Returns what is served.
    pub async fn sync(&self, client: &kube::Client, store: &CertStore) -> Result<Material> {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        let secret_name = format!("Secret {}/{}", self.namespace, self.secret);
        let mut material = None;
        for _ in 0..3 {
            let mut secret = secrets
                .get(&self.secret)
                .await
                .map_err(|source| Error::Api {
                    what: format!("reading {secret_name}"),
                    source,
                })?;
            let current = Material::from_secret(&secret);
            let plan = self.plan(current.as_ref(), SystemTime::now());
            let (Plan::NewCert(why) | Plan::NewCa(why)) = &plan else {
                material = current;
                break;
            };
            let minted = self.mint(&plan, current.as_ref(), SystemTime::now())?;
            minted.write_to(&mut secret);
            secret.metadata.managed_fields = None;
            match secrets
                .replace(&self.secret, &PostParams::default(), &secret)
                .await
            {
                Ok(_) => {
                    tracing::info!(secret = %secret_name, reason = %why, new_ca = matches!(plan, Plan::NewCa(_)), "wrote a new serving certificate");
                    material = Some(minted);
                    break;
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    tracing::info!(secret = %secret_name, "another replica wrote the Secret first; reading it again");
                }
                Err(source) => {
                    return Err(Error::Api {
                        what: format!("writing {secret_name}"),
                        source,
                    });
                }
            }
        }
        let material = material.ok_or(Error::Contended)?;
        let bundled = self.ensure_ca_bundle(client, &material.ca_bundle).await;
        // A certificate from a CA the API server does not trust yet would fail every call:
        // serve it once the caBundle holds its CA (or when nothing is served yet).
        if bundled.is_ok() || !store.is_loaded() {
            let changed = store.current().is_none_or(|c| {
                c.cert.first().map(AsRef::as_ref) != first_der(&material.cert).as_deref()
            });
            if changed {
                store
                    .load_pem(material.cert.as_bytes(), material.key.as_bytes())
                    .map_err(|e| Error::Load(e.to_string()))?;
                tracing::info!(secret = %secret_name, "serving certificate loaded");
            }
        }
        bundled?;
        Ok(material)
    }

    /// Set every webhook's `caBundle` of the configuration to `bundle`.
    async fn ensure_ca_bundle(&self, client: &kube::Client, bundle: &str) -> Result<()> {
        let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        let what = format!(
            "the caBundle of ValidatingWebhookConfiguration {}",
            self.webhook_configuration
        );
        for _ in 0..3 {
            let mut vwc = api
                .get(&self.webhook_configuration)
                .await
                .map_err(|source| Error::Api {
                    what: format!("reading {what}"),
                    source,
                })?;
            let mut changed = false;
            for hook in vwc.webhooks.iter_mut().flatten() {
                if hook
                    .client_config
                    .ca_bundle
                    .as_ref()
                    .map(|b| b.0.as_slice())
                    != Some(bundle.as_bytes())
                {
                    hook.client_config.ca_bundle = Some(ByteString(bundle.as_bytes().to_vec()));
                    changed = true;
                }
            }
            if !changed {
                return Ok(());
            }
            vwc.metadata.managed_fields = None;
            match api
                .replace(&self.webhook_configuration, &PostParams::default(), &vwc)
                .await
            {
                Ok(_) => {
                    tracing::info!(configuration = %self.webhook_configuration, "caBundle set");
                    return Ok(());
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(source) => {
                    return Err(Error::Api {
                        what: format!("writing {what}"),
                        source,
                    });
                }
            }
        }
        Err(Error::Contended)
    }

    /// Keep the certificate current: [`Self::sync`] until it succeeds (backoff 1 s to 30 s),
    /// then every `interval`. `on_load` hears of each pass (for the metrics).
    pub async fn run(
        self,
        client: kube::Client,
        store: Arc<CertStore>,
        interval: Duration,
        on_load: impl Fn(bool) + Send + Sync + 'static,
    ) {
        let mut delay = Duration::from_secs(1);
        let mut failing = false;
        loop {
            match self.sync(&client, &store).await {
                Ok(_) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("serving certificate in sync again");
                    }
                    on_load(true);
                    delay = Duration::from_secs(1);
                    tokio::time::sleep(interval).await;
                }
                Err(e) => {
                    if store.is_loaded() {
                        tracing::warn!(error = %e, "managing the serving certificate failed; still serving the current one");
                    } else {
                        tracing::error!(error = %e, "no serving certificate yet; not ready (writes pass unchecked with failurePolicy Ignore)");
                    }
                    failing = true;
                    on_load(false);
                    tokio::time::sleep(delay.min(interval)).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

fn first_der(pem: &str) -> Option<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()
        .map(|d| d.as_ref().to_vec())
}

#[cfg(test)]
mod tests;
