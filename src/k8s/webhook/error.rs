//! Errors of the webhook, its TLS material and its ConfigMap cache.

/// Everything that can go wrong in the webhook. Requests the API server sent badly are
/// `Invalid*`/`Missing*`/`NotAdmissionReview` (HTTP 400), never a policy outcome.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not JSON, or not shaped like an `AdmissionReview`.
    #[error("request body is not a valid AdmissionReview: {0}")]
    InvalidReview(#[source] serde_json::Error),
    /// The body is JSON, but of another apiVersion or kind.
    #[error(
        "expected kind AdmissionReview of apiVersion admission.k8s.io/v1, got kind `{kind}` of apiVersion `{api_version}`"
    )]
    NotAdmissionReview { api_version: String, kind: String },
    /// An `AdmissionReview` without `request`.
    #[error("AdmissionReview has no `request`")]
    MissingRequest,
    /// A request without `uid`, which the response must echo.
    #[error("AdmissionReview request has no `uid`")]
    MissingUid,
    /// A CREATE or UPDATE without the object to judge.
    #[error("{operation} request has no `object`")]
    MissingObject { operation: String },
    /// The body is larger than `--max-body-bytes`.
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The body could not be read (client went away, bad chunking).
    #[error("cannot read the request body: {0}")]
    BodyRead(String),
    /// The engine panicked on this object; see `review` for what the response says then.
    #[error("internal error while checking the object: {0}")]
    Internal(String),
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    TlsRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The PEM holds no usable certificate or key, or they do not match.
    #[error("invalid TLS material: {0}")]
    TlsInvalid(String),
    /// rcgen could not make the throwaway CA or serving certificate.
    #[error("cannot generate a self-signed certificate: {0}")]
    SelfSigned(#[source] rcgen::Error),
}

/// Result of the webhook layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Short label for the `error` label of the error counter.
    #[must_use]
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::InvalidReview(_) => "invalid_review",
            Error::NotAdmissionReview { .. } => "not_admission_review",
            Error::MissingRequest => "missing_request",
            Error::MissingUid => "missing_uid",
            Error::MissingObject { .. } => "missing_object",
            Error::BodyTooLarge { .. } => "body_too_large",
            Error::BodyRead(_) => "body_read",
            Error::Internal(_) => "internal",
            Error::TlsRead { .. } => "tls_read",
            Error::TlsInvalid(_) => "tls_invalid",
            Error::SelfSigned(_) => "self_signed",
        }
    }

    /// Whether the API server (or whoever called) sent a bad request: HTTP 400.
    #[must_use]
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            Error::InvalidReview(_)
                | Error::NotAdmissionReview { .. }
                | Error::MissingRequest
                | Error::MissingUid
                | Error::MissingObject { .. }
                | Error::BodyRead(_)
        )
    }
}
