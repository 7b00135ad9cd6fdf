//! What a run is told from outside its inputs: the command-line flags of `lint`, the webhook and
//! the controller, as plain data.

use std::fmt;

/// Default annotation prefix (`--annotations-prefix` of the controller).
pub const DEFAULT_ANNOTATION_PREFIX: &str = "nginx.ingress.kubernetes.io";

/// The `spec.controller` value of ingress-nginx's IngressClass.
pub const CONTROLLER_NAME: &str = "k8s.io/ingress-nginx";

/// A supported ingress-nginx release line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub minor: u8,
}

impl Version {
    pub const OLDEST: Version = Version { minor: 9 };
    pub const NEWEST: Version = Version { minor: 15 };

    /// Parse `1.15`, `v1.15.1`, `controller-v1.12.0`.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let t = s.trim();
        let t = t.strip_prefix("controller-").unwrap_or(t);
        let t = t.strip_prefix('v').unwrap_or(t);
        let mut parts = t.split('.');
        let major = parts.next().and_then(|p| p.parse::<u32>().ok());
        let minor = parts.next().and_then(|p| p.parse::<u8>().ok());
        let patch_ok = parts.next().is_none_or(|p| p.parse::<u32>().is_ok());
        match (major, minor) {
            (Some(1), Some(minor))
                if patch_ok && (Self::OLDEST.minor..=Self::NEWEST.minor).contains(&minor) =>
            {
                Ok(Version { minor })
            }
            _ => Err(VersionError(s.to_string())),
        }
    }
}

impl Default for Version {
    fn default() -> Self {
        Self::NEWEST
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}", self.minor)
    }
}

/// An unsupported `--controller-version`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported ingress-nginx version {0:?}: snippet-guard knows v1.9 to v1.15")]
pub struct VersionError(pub String);

/// What a run is told from outside the inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub version: Version,
    /// ingress-nginx `--annotations-prefix`.
    pub annotation_prefix: String,
    /// `namespace/name` of controller ConfigMaps; when empty they are recognised by name, labels
    /// and keys.
    pub controller_configmaps: Vec<String>,
    /// Ingress class names served by ingress-nginx, besides `nginx` and those whose IngressClass
    /// names `k8s.io/ingress-nginx`.
    pub ingress_classes: Vec<String>,
    /// Only these rule ids (all when empty).
    pub select: Vec<String>,
    /// Never these rule ids.
    pub ignore: Vec<String>,
    /// Honour `snippet-guard.io/ignore-*` annotations.
    pub annotation_suppressions: bool,
    /// The controllers to judge, by profile name (`ingress-nginx`, `f5-nginx-ingress`); every
    /// profile when empty.
    pub profiles: Vec<String>,
    /// F5 NGINX Ingress Controller.
    pub nic: NicSettings,
    /// NGINX Gateway Fabric.
    pub ngf: NgfSettings,
}

/// What NGINX Gateway Fabric is told by its command line, which no object shows.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NgfSettings {
    /// `--snippets`: `None` when not known (snippets are judged as rendered).
    pub snippets: Option<bool>,
}

/// What F5 NGINX Ingress Controller is told by its command line, which no object shows.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NicSettings {
    pub version: NicVersion,
    /// `-enable-snippets`: `None` when not known (snippets are judged as rendered).
    pub snippets: Option<bool>,
    /// Ingress class names NIC serves besides `nginx` and those whose IngressClass names
    /// `nginx.org/ingress-controller` (its `-ingress-class`).
    pub ingress_classes: Vec<String>,
    /// `namespace/name` of NIC's ConfigMap (its `-nginx-configmaps`); recognised by name,
    /// labels and keys when empty.
    pub configmaps: Vec<String>,
}

/// A supported F5 NGINX Ingress Controller release line (3.7 to 5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NicVersion {
    pub major: u8,
    pub minor: u8,
}

impl NicVersion {
    pub const OLDEST: NicVersion = NicVersion { major: 3, minor: 7 };
    pub const NEWEST: NicVersion = NicVersion { major: 5, minor: 5 };
    /// External authentication (Policy `externalAuth`, with `authSnippets`) appeared in 5.5.
    pub const EXTERNAL_AUTH: NicVersion = NicVersion { major: 5, minor: 5 };

    /// Parse `5.5`, `v5.5.4`, `3.7.2`.
    pub fn parse(s: &str) -> Result<Self, NicVersionError> {
        let t = s.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let mut parts = t.split('.');
        let major = parts.next().and_then(|p| p.parse::<u8>().ok());
        let minor = parts.next().and_then(|p| p.parse::<u8>().ok());
        let patch_ok =
            parts.next().is_none_or(|p| p.parse::<u32>().is_ok()) && parts.next().is_none();
        match (major, minor) {
            (Some(major), Some(minor)) if patch_ok => {
                let v = NicVersion { major, minor };
                if (Self::OLDEST..=Self::NEWEST).contains(&v) {
                    Ok(v)
                } else {
                    Err(NicVersionError(s.to_string()))
                }
            }
            _ => Err(NicVersionError(s.to_string())),
        }
    }

    /// `v5.5`, as a static string for messages.
    #[must_use]
    pub fn as_static(self) -> &'static str {
        match (self.major, self.minor) {
            (3, 7) => "v3.7",
            (3, _) => "v3.x",
            (4, 0) => "v4.0",
            (4, _) => "v4.x",
            (5, 0) => "v5.0",
            (5, 1) => "v5.1",
            (5, 2) => "v5.2",
            (5, 3) => "v5.3",
            (5, 4) => "v5.4",
            (5, 5) => "v5.5",
            _ => "v5.x",
        }
    }
}

impl Default for NicVersion {
    fn default() -> Self {
        Self::NEWEST
    }
}

impl fmt::Display for NicVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}", self.major, self.minor)
    }
}

/// An unsupported `--nic-version`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported F5 NGINX Ingress Controller version {0:?}: snippet-guard knows v3.7 to v5.5")]
pub struct NicVersionError(pub String);

impl Settings {
    /// Whether the profile named `name` judges objects in this run.
    #[must_use]
    pub fn profile_enabled(&self, name: &str) -> bool {
        self.profiles.is_empty() || self.profiles.iter().any(|p| p == name)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            version: Version::NEWEST,
            annotation_prefix: DEFAULT_ANNOTATION_PREFIX.to_string(),
            controller_configmaps: Vec::new(),
            ingress_classes: Vec::new(),
            select: Vec::new(),
            ignore: Vec::new(),
            annotation_suppressions: true,
            profiles: Vec::new(),
            nic: NicSettings::default(),
            ngf: NgfSettings::default(),
        }
    }
}
