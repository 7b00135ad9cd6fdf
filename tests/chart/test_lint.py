"""`helm lint --strict` (the Helm 4 SDK's lint) on every ci/*-values.yaml, and the schema."""

from __future__ import annotations

import helm_python
import pytest

from conftest import CHART, CI_VALUES, NAMESPACE, ci_values, render

# The one message accepted: severity 1 (INFO) "icon is recommended". The project hosts no icon
# yet, and an `icon:` URL that points at nothing would be worse than none. Any other message,
# and any message of severity >= 2 (WARNING, ERROR), fails the test.
ACCEPTED = {(1, "Chart.yaml", "icon is recommended")}


def lint(values, **kwargs):
    return helm_python.lint(str(CHART), values, strict=True, namespace=NAMESPACE, **kwargs)


def test_the_ci_variants_the_chart_promises_exist():
    names = {p.name for p in CI_VALUES}
    for required in ("default-values.yaml", "cert-manager-values.yaml", "warn-mode-values.yaml", "single-replica-values.yaml"):
        assert required in names


@pytest.mark.parametrize("path", CI_VALUES, ids=lambda p: p.name)
def test_lint_strict_is_clean(path):
    report = lint(ci_values(path))
    assert report["errors"] == []
    unexpected = [m for m in report["messages"] if (m["severity"], m["path"], m["error"]) not in ACCEPTED]
    assert unexpected == []


@pytest.mark.parametrize("kube_version", ["1.28.0", "1.33.0", "1.37.0"])
def test_lint_for_supported_kubernetes_versions(kube_version):
    # Lint with that version's capabilities (it also reports deprecated or removed API versions).
    report = lint({}, kube_version=kube_version)
    assert report["errors"] == []
    assert all(m["severity"] < 2 for m in report["messages"]), report


BAD_VALUES = {
    "unknown mode": {"webhook": {"mode": "block"}},
    "mode with wrong case": {"webhook": {"mode": "Enforce"}},
    "replicaCount as string": {"webhook": {"replicaCount": "2"}},
    "replicaCount as float": {"webhook": {"replicaCount": 1.5}},
    "controller replicaCount as string": {"controller": {"replicaCount": "two"}},
    "unknown failurePolicy": {"webhook": {"failurePolicy": "Maybe"}},
    "timeout above the API server's 30 s": {"webhook": {"timeoutSeconds": 31}},
    "unknown configMaps scope": {"webhook": {"configMaps": {"scope": "some"}}},
    "boolean as string": {"certManager": {"enabled": "yes"}},
    "misspelt key": {"webhook": {"replicas": 3}},
    "unknown top-level key": {"webhooks": {}},
    "image digest without algorithm": {"image": {"digest": "abc"}},
    "unsupported ingress-nginx version": {"engine": {"controllerVersion": "1.8"}},
    "annotations prefix with a trailing slash": {"engine": {"annotationsPrefix": "nginx.ingress.kubernetes.io/"}},
    "unknown rule to select": {"engine": {"select": ["redundant-forwarded-prot"]}},
    "extra argument without dashes": {"engine": {"extraArgs": ["verbose"]}},
}


@pytest.mark.parametrize("values", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_rejects_bad_values_in_lint_and_render(values):
    report = lint(values)
    assert any("schema" in e or "at '/" in e for e in report["errors"]), report
    with pytest.raises(helm_python.HelmValuesError):
        render(values)


def test_schema_accepts_every_valid_mode():
    for mode in ("enforce", "warn", "audit"):
        assert lint({"webhook": {"mode": mode}})["errors"] == []
