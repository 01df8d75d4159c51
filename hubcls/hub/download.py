"""The downloader lives in :mod:`hubcls._download` (below every layer, so models and data use it
too); this name is kept so ``from hubcls.hub.download import download`` keeps working."""
from __future__ import annotations

from .._download import (  # noqa: F401 - re-exported
    OFFICIAL_HOSTS,
    Limits,
    cache_path,
    cached,
    download,
    http_allowed,
    hubcls_home,
    is_offline,
    read_record,
    record_path,
    resolve_url,
    sha256_file,
)
