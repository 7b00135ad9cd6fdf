"""Security scan with checkov (offline: --skip-download) of every ci/*-values.yaml render, of
manifests/install.yaml, and of the Dockerfile. Zero failed checks, except the ones listed
with a reason in checkov-skips.yaml."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from conftest import CI_VALUES, ROOT, ci_values, render_manifests

SKIPS = yaml.safe_load((Path(__file__).parent / "checkov-skips.yaml").read_text())
CHECKOV = str(Path(sys.executable).parent / "checkov")


def run_checkov(*args: str) -> list[dict]:
    """Failed checks as checkov reports them (JSON output, nothing skipped)."""
    proc = subprocess.run(
        [CHECKOV, "--skip-download", "--quiet", "--compact", "-o", "json", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stderr
    out = json.loads(proc.stdout)
    reports = out if isinstance(out, list) else [out]
    failed = []
    for report in reports:
        if not report.get("results"):  # an empty scan gives a summary with no results
            continue
        failed += report["results"]["failed_checks"]
        passed = report["summary"]["passed"] + report["summary"]["failed"]
        assert passed > 0, "checkov scanned nothing"
    return failed


@pytest.fixture(scope="module")
def kubernetes_failures(tmp_path_factory):
    """{variant: [failed check ids]} for every ci variant and manifests/install.yaml."""
    base = tmp_path_factory.mktemp("checkov")
    variants = {}
    for path in CI_VALUES:
        name = path.name.removesuffix("-values.yaml")
        docs = render_manifests.render(ci_values(path))
        (base / name).mkdir()
        (base / name / "rendered.yaml").write_text("---\n".join(d["text"] for d in docs))
        variants[name] = ci_values(path)
    (base / "install").mkdir()
    (base / "install" / "install.yaml").write_text((ROOT / "manifests" / "install.yaml").read_text())
    variants["install"] = {}

    failed = run_checkov("-d", str(base), "--framework", "kubernetes")
    by_variant = defaultdict(list)
    for check in failed:
        variant = Path(check["file_path"]).parts[1]
        by_variant[variant].append(check["check_id"])
    assert set(by_variant) <= set(variants), by_variant
    return variants, dict(by_variant)


def test_no_failed_kubernetes_check_beyond_the_documented_skips(kubernetes_failures):
    _, by_variant = kubernetes_failures
    skips = SKIPS["kubernetes"]
    unexpected = {v: sorted(set(ids) - set(skips)) for v, ids in by_variant.items()}
    assert {v: ids for v, ids in unexpected.items() if ids} == {}


def test_every_kubernetes_skip_still_applies(kubernetes_failures):
    _, by_variant = kubernetes_failures
    seen = {check for ids in by_variant.values() for check in ids}
    assert set(SKIPS["kubernetes"]) <= seen, "remove skips that no longer fail"


def test_variants_with_an_image_digest_fail_no_check(kubernetes_failures):
    variants, by_variant = kubernetes_failures
    pinned = [name for name, values in variants.items() if values.get("image", {}).get("digest")]
    assert pinned, "one ci variant should pin the image by digest"
    for name in pinned:
        assert by_variant.get(name, []) == []


def test_skips_have_reasons():
    for framework in SKIPS.values():
        for check_id, entry in framework.items():
            assert check_id.startswith("CKV")
            assert len(entry["reason"]) > 40


def test_dockerfile_fails_no_check_beyond_the_documented_skips():
    failed = {c["check_id"] for c in run_checkov("-f", str(ROOT / "Dockerfile"), "--framework", "dockerfile")}
    assert failed == set(SKIPS["dockerfile"])
