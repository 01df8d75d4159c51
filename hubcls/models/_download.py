"""Official weights for a pretrained config, through the generic downloader (hubcls.hub.download)."""
from __future__ import annotations

from pathlib import Path

from ..errors import DownloadError, OfflineError
from ..hub.download import cache_path, download, is_offline  # noqa: F401 - re-exported
from ._pretrained import PretrainedCfg


def fetch_weights(cfg: PretrainedCfg, progress: bool = True) -> Path:
    """Local path of ``cfg``'s weights, downloading the first available official file.

    Candidates in order: release/2.0 dygraph, legendary, static tar (cfg.weight_urls()). A cached
    copy of any of them is used without touching the network.
    """
    urls = cfg.weight_urls()
    if not urls:
        raise DownloadError(f"{cfg.name} has no official weights")
    for url in urls:  # any cached candidate wins, online or not
        p = cache_path(url)
        if p.is_file() and (cfg.sha256 is None or url != cfg.url):
            return p
    if is_offline():
        where = ", ".join(str(cache_path(u)) for u in urls)
        raise OfflineError(f"weights of {cfg.name} are not in the cache and HUBCLS_OFFLINE=1 forbids "
                           f"downloading them from {urls[0]}. Put the file at one of: {where}")
    errors = []
    for url in urls:
        try:
            return download(url, sha256=cfg.sha256 if url == cfg.url else None,
                            size=cfg.file_size if url == cfg.url else None, progress=progress)
        except OfflineError:
            raise
        except DownloadError as exc:
            errors.append(str(exc))
    raise DownloadError(f"could not download weights of {cfg.name}:\n  " + "\n  ".join(errors))
