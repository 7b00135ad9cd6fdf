"""The hook in .pre-commit-hooks.yaml, run by the real pre-commit framework (PyPI) the way a user's
project runs it: `repo:` this repository at a commit, `pre-commit run snippet-guard --files ...`.

pre-commit installs a `language: rust` hook with `cargo install --path .` (a release build, some
minutes on 2 cores) once per repository and commit. To test the working tree as it is (also with
uncommitted changes, and in a fresh clone), the tracked and new files the build reads are
committed into a snapshot repository under .venv with fixed author and dates: the same sources give
the same commit, so pre-commit's store (PRE_COMMIT_HOME, also under .venv) is reused between runs
and only a change of the sources installs again. CARGO_TARGET_DIR under .venv keeps that rebuild
incremental (about 2 minutes; the first build about 7).

`cargo install` without `--locked`, as pre-commit runs it, resolves the newest compatible
dependency versions instead of Cargo.lock's: this test builds what a user of the hook gets.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

CACHE = ROOT / ".venv" / "pre-commit-hook"
HOOK_REPO = CACHE / "repo"
HOOK_ID = "snippet-guard"
RULE = "redundant-forwarded-proto"

# The original report: an Ingress whose configuration-snippet sets X-Forwarded-Proto again.
INGRESS = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: web
  annotations:
    nginx.ingress.kubernetes.io/configuration-snippet: |
      {snippet}
spec:
  ingressClassName: nginx
  rules:
    - host: {name}.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: {name}
                port:
                  number: 80
"""
BAD = INGRESS.format(name="shop", snippet="proxy_set_header X-Forwarded-Proto $scheme;")
CLEAN = INGRESS.format(name="blog", snippet='more_set_headers "X-Frame-Options: DENY";')

# The snapshot commit depends on the files only: no user config, fixed identity and dates.
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "snippet-guard tests",
    "GIT_AUTHOR_EMAIL": "tests@snippet-guard.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_NAME": "snippet-guard tests",
    "GIT_COMMITTER_EMAIL": "tests@snippet-guard.invalid",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


# What `cargo install --path .` builds from, and the hook definition. Other files (docs, tests,
# the chart) are left out so that editing them does not make pre-commit build again.
HOOK_FILES = ("Cargo.toml", "Cargo.lock", ".pre-commit-hooks.yaml")
HOOK_DIRS = ("src/", "crates/", "benches/")


def snapshot_working_tree() -> str:
    """Commit the tracked and new (not ignored) hook files of the working tree into HOOK_REPO."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    files = sorted(
        {
            name
            for name in listed.split("\0")
            if (name in HOOK_FILES or name.startswith(HOOK_DIRS)) and (ROOT / name).is_file()
        }
    )
    assert set(HOOK_FILES) <= set(files)
    if HOOK_REPO.exists():
        shutil.rmtree(HOOK_REPO)
    HOOK_REPO.mkdir(parents=True)
    for name in files:
        target = HOOK_REPO / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    git("init", "-q", "-b", "main", cwd=HOOK_REPO)
    git("add", "-A", cwd=HOOK_REPO)
    git("commit", "-q", "--no-verify", "-m", "snapshot of the working tree", cwd=HOOK_REPO)
    return git("rev-parse", "HEAD", cwd=HOOK_REPO).strip()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A user's git repository with the hook configured and the two Ingresses."""
    rev = snapshot_working_tree()
    path = tmp_path_factory.mktemp("project")
    git("init", "-q", cwd=path)
    config = {"repos": [{"repo": str(HOOK_REPO), "rev": rev, "hooks": [{"id": HOOK_ID}]}]}
    (path / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    (path / "deploy").mkdir()
    (path / "deploy" / "shop.yaml").write_text(BAD)
    (path / "deploy" / "blog.yaml").write_text(CLEAN)
    (path / "notes.txt").write_text(BAD)
    yield path
    # Drop the hook installs of older snapshots whose projects are gone (~100 MB each).
    pre_commit(path, "gc")


def pre_commit(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **GIT_ENV,
        "PRE_COMMIT_HOME": str(CACHE / "home"),
        "CARGO_TARGET_DIR": str(CACHE / "target"),
        "PRE_COMMIT_COLOR": "never",
    }
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,  # the first install builds the binary in release mode
    )


def run_hook(project: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return pre_commit(project, "run", HOOK_ID, "--files", *files)


def test_the_hook_file_is_what_pre_commit_reads():
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == HOOK_ID
    assert hook["language"] == "rust"
    assert hook["entry"] == "snippet-guard lint"
    assert hook["require_serial"] is True
    files = re.compile(hook["files"])
    for name in ("deploy/shop.yaml", "values.yml", "ingress.json", "nginx/nginx.conf"):
        assert files.search(name), name
    for name in ("notes.txt", "shop.yaml.orig", "Cargo.toml", "nginx.conf.d"):
        assert not files.search(name), name


def test_the_hook_fails_on_the_ingress_that_sets_x_forwarded_proto_again(project: Path):
    result = run_hook(project, "deploy/shop.yaml")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"error[{RULE}]" in output
    assert "deploy/shop.yaml:8:7" in output
    assert "Failed" in output


def test_the_hook_passes_a_clean_ingress(project: Path):
    result = run_hook(project, "deploy/blog.yaml")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Passed" in output
    assert RULE not in output


def test_the_hook_looks_at_manifests_and_nginx_configurations_only(project: Path):
    # The same Ingress in a .txt file is not passed to snippet-guard.
    result = run_hook(project, "notes.txt")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no files to check" in output
    assert RULE not in output
