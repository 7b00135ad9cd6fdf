"""Every rendered object validates against the Kubernetes 1.33 and 1.37 OpenAPI schemas
(kubernetes-validate's bundled, offline copies; strict: unknown fields are errors)."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

from conftest import ROOT

KUBERNETES_VERSIONS = ["1.33.0", "1.37.0"]

# Custom resources have no schema among Kubernetes' own; the CRDs belong to other projects
# (and their clusters), so these kinds are skipped on purpose. Their content is checked by
# the assertions in test_webhook.py / test_objects.py instead.
NO_CORE_SCHEMA = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "prometheus-operator CRD, not part of Kubernetes",
    ("cert-manager.io/v1", "Certificate"): "cert-manager CRD, not part of Kubernetes",
    ("cert-manager.io/v1", "Issuer"): "cert-manager CRD, not part of Kubernetes",
}


def validate_all(objects, version):
    skipped = []
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in NO_CORE_SCHEMA:
            skipped.append(key)
            continue
        # Raises ValidationError, or SchemaNotFoundError for a kind with no schema in this version.
        kubernetes_validate.validate(obj, version, strict=True)
    return skipped


def test_the_exact_schema_versions_are_bundled():
    # validate() silently falls back to the newest bundled version not newer than the one asked
    # for; make sure 1.33 and 1.37 themselves are there.
    bundled = all_versions()
    for version in KUBERNETES_VERSIONS:
        assert version in bundled, bundled


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_objects_validate(ci_case, version):
    name, values, objects = ci_case
    skipped = validate_all(objects, version)
    if values.get("certManager", {}).get("enabled"):
        assert ("cert-manager.io/v1", "Certificate") in skipped
    else:
        assert not any(k[0] == "cert-manager.io/v1" for k in skipped)
    if not values.get("metrics", {}).get("serviceMonitor", {}).get("enabled"):
        assert ("monitoring.coreos.com/v1", "ServiceMonitor") not in skipped


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", ["manifests/install.yaml", "manifests/examples/bad-ingress.yaml", "manifests/examples/good-ingress.yaml"])
def test_committed_manifests_validate(path, version):
    objects = [o for o in yaml.safe_load_all((ROOT / path).read_text()) if o]
    assert objects
    assert validate_all(objects, version) == []


def test_the_validator_does_reject_a_broken_object(default_objects):
    # Guards the tests above against a validator that accepts anything.
    deployment = copy.deepcopy(next(o for o in default_objects if o["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystm"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.37.0", strict=True)
    vwc = copy.deepcopy(next(o for o in default_objects if o["kind"] == "ValidatingWebhookConfiguration"))
    vwc["webhooks"][0]["timeoutSeconds"] = "5"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(vwc, "1.37.0", strict=True)
