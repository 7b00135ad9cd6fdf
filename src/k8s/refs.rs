//! References between ingress-nginx ConfigMaps, shared by the webhook's cache, the controller
//! and `audit`.

use k8s_openapi::api::core::v1::ConfigMap;

/// `(namespace, name)`.
pub type NsName = (String, String);

/// Parse `NS/NAME`.
#[must_use]
pub fn parse_ns_name(s: &str) -> Option<NsName> {
    let (ns, name) = s.split_once('/')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains('/'))
        .then(|| (ns.to_string(), name.to_string()))
}

/// The ConfigMap a controller ConfigMap's `proxy-set-headers` names (`NS/NAME`, or `NAME` in
/// the controller's namespace), as the engine resolves it.
#[must_use]
pub fn proxy_set_headers_ref(cm: &ConfigMap) -> Option<NsName> {
    let value = cm.data.as_ref()?.get("proxy-set-headers")?.trim();
    if value.is_empty() {
        return None;
    }
    Some(match value.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (
            cm.metadata.namespace.clone().unwrap_or_default(),
            value.to_string(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(
            parse_ns_name("ingress-nginx/ingress-nginx-controller"),
            Some(("ingress-nginx".into(), "ingress-nginx-controller".into()))
        );
        assert_eq!(parse_ns_name("nope"), None);
        assert_eq!(parse_ns_name("a/b/c"), None);
        let mut cm = ConfigMap::default();
        cm.metadata.namespace = Some("ingress-nginx".into());
        cm.data = Some([("proxy-set-headers".to_string(), " custom ".to_string())].into());
        assert_eq!(
            proxy_set_headers_ref(&cm),
            Some(("ingress-nginx".into(), "custom".into()))
        );
        cm.data = Some([("proxy-set-headers".to_string(), "other/custom".to_string())].into());
        assert_eq!(
            proxy_set_headers_ref(&cm),
            Some(("other".into(), "custom".into()))
        );
    }
}
