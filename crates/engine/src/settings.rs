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
        }
    }
}
