"""Official weights for a pretrained config, through the one downloader (hubcls._download).

PaddleClas publishes no checksums for its weight files, so the zoo records none: each file is
recorded by sha256 and size the first time it enters the cache (trust on first use) and must match
that record on every later use; a config that does know its checksum (``sha256``/``file_size``, e.g.
a plugin's) is verified against it. Before a file enters the cache it must also load as weights
(through the restricted unpickler / safetensors / the static-tar reader).
"""
from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import List, Optional, Tuple, Union

from .._download import cache_path, cached, download, is_offline, resolve_url  # noqa: F401 - re-exported
from ..errors import DownloadError, HostUnreachableError, WeightsError, WeightsUnavailableError
from ._pretrained import PretrainedCfg


def validate_weights(path: Union[str, os.PathLike]) -> None:
    """Raise unless ``path`` reads as a weights file (run before a download enters the cache)."""
    from ._weights import read_state

    if not read_state(path):
        raise WeightsError(f"{path}: no tensors in the file")


def _expected(cfg: PretrainedCfg, url: str):
    return (cfg.sha256, cfg.file_size) if url == cfg.url else (None, None)


def fetch_weights(cfg: PretrainedCfg, progress: bool = True) -> Path:
    """Local path of ``cfg``'s weights, downloading the first available official file.

    Candidates in order: release/2.0 dygraph, legendary, static tar (cfg.weight_urls()). A verified
    cached copy of any of them is used without touching the network. When none can be had, the
    WeightsUnavailableError lists what was tried and every way to fix it.
    """
    urls = cfg.weight_urls()
    if not urls:
        raise WeightsError(f"{cfg.name} has no official pretrained weights")
    for url in urls:  # any verified cached candidate wins, online or not
        sha, size = _expected(cfg, url)
        hit = cached(url, sha256=sha, size=size, validate=validate_weights)
        if hit is not None:
            return hit
    if is_offline():
        err = WeightsUnavailableError(unavailable_message(cfg, [], offline=True))
        err.offline = True
        raise err
    outcomes: List[Tuple[str, str]] = []
    dead_hosts = set()
    for url in urls:
        real = resolve_url(url)
        host = urllib.parse.urlsplit(real).netloc
        if host in dead_hosts:
            outcomes.append((real, "not tried (same unreachable host)"))
            continue
        sha, size = _expected(cfg, url)
        try:
            return download(url, sha256=sha, size=size, progress=progress, validate=validate_weights)
        except HostUnreachableError as exc:
            dead_hosts.add(host)
            outcomes.append((real, _reason(exc, real)))
        except DownloadError as exc:
            outcomes.append((real, _reason(exc, real)))
    raise WeightsUnavailableError(unavailable_message(cfg, outcomes))


def _reason(exc, real_url: str) -> str:
    text = str(exc)
    return text[len(real_url) + 2:] if text.startswith(real_url + ": ") else text


def unavailable_message(cfg: PretrainedCfg, outcomes: List[Tuple[str, str]], offline: bool = False,
                        error: Optional[str] = None) -> str:
    """The one message for "official weights cannot be had" (API and every CLI command print it)."""
    urls = cfg.weight_urls()
    places = [str(cache_path(u)) for u in urls]
    if offline:
        head = (f"official weights of {cfg.name} are not in the cache, and HUBCLS_OFFLINE=1 forbids "
                f"downloading them ({resolve_url(urls[0])})")
    else:
        head = f"official weights of {cfg.name} could not be downloaded:"
        head += "".join(f"\n  {u}: {why}" for u, why in outcomes)
    if error:
        head += f"\n  {error}"
    fixes = [
        f"use a weights file you have: create_model({cfg.name!r}, pretrained=FILE), "
        f"hub.Module(name={cfg.name!r}, weights=FILE), or --weights FILE on the command line",
        "download through a mirror of the official host: HUBCLS_MODEL_ENDPOINT=https://mirror.example/base "
        "(URL paths below the host are kept)",
        f"put the file into the cache yourself (it is checked before use): {places[0]}"
        + (f" (or, for the other official files: {', '.join(places[1:])})" if len(places) > 1 else "")
        + "; HUBCLS_HOME moves the cache",
    ]
    if offline:
        fixes.append("unset HUBCLS_OFFLINE to let hubcls download it")
    else:
        fixes.append("HUBCLS_OFFLINE=1 makes hubcls use only the cache, without waiting for the network")
    return head + "\nTo fix it, any one of:\n" + "\n".join(f"  - {f}" for f in fixes)
