"""The security suite (issue 14): crafted weight files, hostile mirrors, bounded downloads.

Every test gets its own HUBCLS_HOME and no download-related environment from the caller, so a
test can assert exactly what entered the cache."""
from __future__ import annotations

import pytest

_ENV = ("HUBCLS_OFFLINE", "HUBCLS_MODEL_ENDPOINT", "HUBCLS_ALLOW_HTTP", "HUBCLS_DOWNLOAD_TIMEOUT",
        "HUBCLS_DOWNLOAD_DEADLINE", "HUBCLS_LOCK_TIMEOUT", "HUBCLS_CONNECT_TIMEOUT")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBCLS_HOME", str(tmp_path / "home"))
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"
