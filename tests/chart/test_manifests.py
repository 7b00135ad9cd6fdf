"""manifests/install.yaml is the chart rendered with default values, and is current.

What is compared: the whole file, byte for byte, against what scripts/render-manifests.py
renders now (the real Helm engine, release and namespace `snippet-guard`, Helm's install
order, the Namespace object first), EXCEPT the three base64 values the chart generates at
random on every render: the webhook Secret's `tls.crt`, `tls.key` and `ca.crt` (the last is
also both webhooks' `caBundle`). In both texts those three values are replaced by fixed
placeholders before the comparison; a change anywhere else, including the Secret's other
fields and the caBundle wiring, makes the file stale.

The committed TLS material is checked on its own instead: a CA, a certificate it signed
for the Service's DNS names, the matching key, caBundle == ca.crt, at least a year left.
"""

from __future__ import annotations

import base64

import yaml

from conftest import NAMESPACE, RELEASE, ROOT, render_manifests
from test_webhook import SERVICE_DNS, check_tls_material

INSTALL = ROOT / "manifests" / "install.yaml"
EXAMPLES = ROOT / "manifests" / "examples"


def masked(text: str) -> str:
    secret = render_manifests.tls_secret(text)
    assert secret is not None, "no webhook TLS Secret in the manifest"
    for key in render_manifests.TLS_KEYS:
        value = secret["data"][key]
        assert len(value) > 100 and value in text
        text = text.replace(value, f"<generated {key}>")
    return text


def test_install_yaml_is_current():
    committed = INSTALL.read_text()
    fresh = render_manifests.install_yaml(previous=None)  # new random CA and certificate
    assert masked(fresh) == masked(committed), "manifests/install.yaml is stale: run scripts/render-manifests.py"


def test_the_render_script_check_agrees():
    # The script's --check keeps the committed TLS material and compares the full text.
    committed = INSTALL.read_text()
    assert render_manifests.install_yaml(previous=committed) == committed


def test_masking_hides_only_the_generated_values():
    committed = INSTALL.read_text()
    changed = committed.replace("timeoutSeconds: 5", "timeoutSeconds: 6", 1)
    assert changed != committed
    assert masked(changed) != masked(committed)
    assert masked(committed).count("<generated ca.crt>") == 3  # Secret + two caBundles


def test_install_yaml_tls_material_is_consistent():
    objects = [o for o in yaml.safe_load_all(INSTALL.read_text()) if o]
    secret = render_manifests.tls_secret(INSTALL.read_text())
    check_tls_material(secret["data"], SERVICE_DNS, min_days_left=365)
    (vwc,) = [o for o in objects if o["kind"] == "ValidatingWebhookConfiguration"]
    for hook in vwc["webhooks"]:
        assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]


def test_install_yaml_starts_with_the_namespace_and_keeps_install_order():
    objects = [o for o in yaml.safe_load_all(INSTALL.read_text()) if o]
    assert objects[0]["kind"] == "Namespace" and objects[0]["metadata"]["name"] == NAMESPACE
    assert objects[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    kinds = [o["kind"] for o in objects]
    assert kinds.index("Secret") < kinds.index("Deployment") < kinds.index("ValidatingWebhookConfiguration")
    assert kinds.index("ServiceAccount") < kinds.index("ClusterRoleBinding")
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("Deployment", f"{RELEASE}-webhook") in names and ("Deployment", f"{RELEASE}-controller") in names


def test_examples():
    bad = yaml.safe_load((EXAMPLES / "bad-ingress.yaml").read_text())
    good = yaml.safe_load((EXAMPLES / "good-ingress.yaml").read_text())
    snippet = bad["metadata"]["annotations"]["nginx.ingress.kubernetes.io/configuration-snippet"]
    assert snippet == "proxy_set_header X-Forwarded-Proto $scheme;\n"
    assert bad["spec"]["ingressClassName"] == "nginx"
    del bad["metadata"]["annotations"]
    assert bad == good
