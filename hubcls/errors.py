"""Exceptions raised by hubcls. All derive from HubclsError so callers can catch one type."""
from __future__ import annotations


class HubclsError(Exception):
    """Base class of every hubcls error."""


class PaddleNotInstalledError(HubclsError, ImportError):
    """No PaddlePaddle build is importable."""


class ConfigError(HubclsError, ValueError):
    """A config value is missing or invalid; the message names the key path and allowed values."""


class ConfigWarning(UserWarning):
    """A config key hubcls does not know (a typo, a key of another version); ``--strict`` makes it an error."""


class RegistryError(HubclsError, KeyError):
    """Unknown or duplicate name in a registry."""

    def __str__(self):  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ImageDecodeError(HubclsError, ValueError):
    """An image could not be decoded. ``source`` names the file (or '<bytes>'), ``reason`` says why."""

    def __init__(self, source, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"cannot decode image {self.source}: {reason}")


class WeightsError(HubclsError, ValueError):
    """A weight file does not match the model (the message lists the keys)."""


class CheckpointError(HubclsError, OSError):
    """A run's checkpoint or model package could not be written (disk full, I/O error); the message
    names the file and what of the run is still complete."""


class DownloadError(HubclsError, OSError):
    """A download failed or its checksum/size did not verify."""


class OfflineError(DownloadError):
    """HUBCLS_OFFLINE=1 and a file is not in the cache; the message says where to put it."""


class UnsafeFileError(WeightsError):
    """A weights/checkpoint file asks for something a data file must not (a pickle naming a Python
    function or class outside what paddle.save writes); it was refused, nothing of it ran.
    ``source`` names the file, ``refused`` the ``module.name`` it asked for (None: malformed)."""

    def __init__(self, message: str, source: str = "", refused=None):
        super().__init__(message)
        self.source = source
        self.refused = refused


class HostUnreachableError(DownloadError):
    """The download host (or proxy) did not answer a quick connection probe; retrying would not help."""


class WeightsUnavailableError(DownloadError, WeightsError):
    """Official weights are neither in the cache nor downloadable; the message gives every fix
    (a weights file, a mirror endpoint, offline mode, the cache path). ``offline`` is True when
    HUBCLS_OFFLINE=1 kept the network out."""

    offline = False


class BackendUnavailableError(HubclsError, RuntimeError):
    """An inference backend cannot run here (the message says what to install)."""


class ExportError(HubclsError, RuntimeError):
    """A model could not be exported or converted (the message says which step failed)."""
