"""manifests/install.yaml is the chart rendered with default values, and is current.

What is compared: the whole file, byte for byte, against what scripts/render-manifests.py
renders now (the real Helm engine, release and namespace `snippet-guard`, Helm's install
order, the Namespace object first). With the default self-managed certificate nothing in the
render is random, so there is nothing to mask; the file publishes no key.
"""

from __future__ import annotations

import yaml

from conftest import NAMESPACE, RELEASE, ROOT, render_manifests

INSTALL = ROOT / "manifests" / "install.yaml"
EXAMPLES = ROOT / "manifests" / "examples"


def test_install_yaml_is_current():
    committed = INSTALL.read_text()
    assert render_manifests.install_yaml(previous=None) == committed, "manifests/install.yaml is stale: run scripts/render-manifests.py"


def test_the_render_script_check_agrees():
    committed = INSTALL.read_text()
    assert render_manifests.install_yaml(previous=committed) == committed


def test_install_yaml_publishes_no_key_and_no_ca_bundle():
    text = INSTALL.read_text()
    assert "PRIVATE KEY" not in text and "tls.key" not in text
    assert render_manifests.tls_secret(text) is None
    objects = [o for o in yaml.safe_load_all(text) if o]
    (secret,) = [o for o in objects if o["kind"] == "Secret"]
    assert secret["type"] == "Opaque" and "data" not in secret
    (vwc,) = [o for o in objects if o["kind"] == "ValidatingWebhookConfiguration"]
    for hook in vwc["webhooks"]:
        assert "caBundle" not in hook["clientConfig"]


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
