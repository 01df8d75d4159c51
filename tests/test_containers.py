"""The CPU serving Dockerfile: hadolint-clean, non-root, a HEALTHCHECK on /health/live, built from files
that exist and that .dockerignore lets through. (docker build cannot run here; the 2-worker serve test
is in test_serve_paddlehub_cli.py and the Kubernetes probes are documented in docs/serving.md.)"""
from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess

import pytest
import tomllib
from _hub_helpers import REPO

DOCKERFILE = REPO / "Dockerfile"


def _instructions():
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint not installed (pip install 'hubcls[test]')")
def test_hadolint_passes():
    r = subprocess.run(["hadolint", "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_runs_as_non_root_with_a_liveness_healthcheck():
    ins = _instructions()
    users = [a for w, a in ins if w == "USER"]
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith("0:")
    # the final stage's user is the last USER, after the last FROM
    last_from = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    assert any(w == "USER" for w, _ in ins[last_from:])
    health = [a for w, a in ins if w == "HEALTHCHECK"]
    assert len(health) == 1 and "/health/live" in health[0] and "8866" in health[0]
    entry = [a for w, a in ins if w == "ENTRYPOINT"][0]
    assert '"hubcls", "serve"' in entry and '"--port", "8866"' in entry
    assert ("EXPOSE", "8866") in ins


def test_version_and_copied_files_exist():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert ("ARG", f"HUBCLS_VERSION={version}") in _instructions()
    ignore = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
              if ln.strip() and not ln.startswith("#")]

    def let_through(path: str) -> bool:
        keep = False
        for pat in ignore:
            neg = pat.startswith("!")
            pat = pat.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pat) or path.startswith(pat + "/"):
                keep = neg
        return keep

    for w, a in _instructions():
        if w == "COPY" and "--from" not in a:
            for src in a.split()[:-1]:
                assert (REPO / src).exists(), src
                assert let_through(src), f"{src} is excluded by .dockerignore"
