//! The request-header lines of a location, as any nginx-based controller writes them, and how
//! findings speak of the controller that wrote them. Profiles fill these in; rules read them.

use std::fmt;

/// Which directive sets request headers in a location.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Proxy,
    Grpc,
}

impl Family {
    #[must_use]
    pub fn directive(self) -> &'static str {
        match self {
            Family::Proxy => "proxy_set_header",
            Family::Grpc => "grpc_set_header",
        }
    }

    #[must_use]
    pub fn of_directive(name: &str) -> Option<Family> {
        match name {
            "proxy_set_header" => Some(Family::Proxy),
            "grpc_set_header" => Some(Family::Grpc),
            _ => None,
        }
    }
}

/// One `proxy_set_header`/`grpc_set_header` line the controller renders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateHeader {
    pub name: String,
    /// The value as the template writes it (`$pass_access_scheme`, `""`...).
    pub value: String,
    /// Why the line is there (`always`, or the annotation/key that switches it on).
    pub reason: String,
    /// The line comes after the snippets (X-Forwarded-Prefix).
    pub after_snippets: bool,
    /// Where the line is, when it was read from a rendered `nginx.conf` rather than modelled.
    pub location: Option<crate::source::Location>,
}

impl TemplateHeader {
    #[must_use]
    pub fn new(name: &str, value: &str, reason: &str) -> Self {
        Self {
            name: name.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
            after_snippets: false,
            location: None,
        }
    }

    /// An empty value: nginx sends no line for it.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// The line as nginx sees it, for messages.
    #[must_use]
    pub fn render(&self, family: Family) -> String {
        let value = if self.value.is_empty() {
            "\"\"".to_string()
        } else if self.value.contains(' ') {
            format!("\"{}\"", self.value)
        } else {
            self.value.clone()
        };
        format!("{} {} {};", family.directive(), self.name, value)
    }
}

/// How findings name the controller whose lines a location holds, and what it offers instead of
/// a snippet line: filled in by the controller's profile, read by the rules' messages.
#[derive(Clone, Copy)]
pub struct Voice {
    /// `ingress-nginx`.
    pub controller: &'static str,
    /// The release the lines are modelled on (`v1.15`), or empty.
    pub version: &'static str,
    /// The supported setting to use instead of a snippet line for a header, if there is one.
    pub knob_for: fn(&str) -> Option<&'static str>,
    /// What happens when nginx rejects a snippet of this controller (ends `invalid-snippet` help).
    pub reload_note: &'static str,
}

impl fmt::Debug for Voice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Voice")
            .field("controller", &self.controller)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Voice {
    /// `ingress-nginx v1.15`, or the controller alone when no version is known.
    #[must_use]
    pub fn release(&self) -> String {
        if self.version.is_empty() {
            self.controller.to_string()
        } else {
            format!("{} {}", self.controller, self.version)
        }
    }
}
