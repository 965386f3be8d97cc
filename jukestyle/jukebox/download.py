"""Fetch checkpoints into a local cache, verified by SHA-256.

The cache lives in ``$JUKESTYLE_CACHE`` (default ``~/.cache/jukestyle``, or
``$XDG_CACHE_HOME/jukestyle``); ``JUKESTYLE_OFFLINE=1`` forbids downloads. A file is downloaded to a temporary name,
checked, and only then renamed into place, so an interrupted download never
leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from jukestyle.errors import CheckpointError
from jukestyle.fileio import atomic_path, sha256_file


@dataclass(frozen=True)
class RemoteFile:
    url: str
    sha256: str
    size_mb: float  # for messages

    @property
    def filename(self) -> str:
        return Path(urllib.parse.urlparse(self.url).path).name


OFFICIAL_CHECKPOINTS: dict[str, RemoteFile] = {
    "jukebox_5b": RemoteFile(
        url="https://openaipublic.azureedge.net/jukebox/models/5b/vqvae.pth.tar",
        sha256="69745413a48e887f8a3fe91b972a6f7f434021a1ce911a99187b331eb48c059a",
        size_mb=7.4,
    ),
}


def cache_dir() -> Path:
    if "JUKESTYLE_CACHE" in os.environ:
        return Path(os.environ["JUKESTYLE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "jukestyle"


def is_url(source: str) -> bool:
    return urllib.parse.urlparse(str(source)).scheme in {"http", "https", "file"}


def download(url: str, destination: Path, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``destination`` atomically; verify ``sha256`` when given.

    With ``JUKESTYLE_OFFLINE=1`` in the environment nothing is downloaded (for offline clusters).
    """
    if os.environ.get("JUKESTYLE_OFFLINE", "") not in ("", "0"):
        raise CheckpointError(f"cannot download {url}: JUKESTYLE_OFFLINE is set")
    print(f"jukestyle: downloading {url} -> {destination}", file=sys.stderr)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(destination) as tmp:
            with open(tmp, "wb") as handle:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    handle.write(chunk)
                    digest.update(chunk)
            if sha256 is not None and digest.hexdigest() != sha256:
                raise CheckpointError(
                    f"download of {url} has sha256 {digest.hexdigest()}, expected {sha256}; the file was not kept"
                )
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        reason = getattr(error, "reason", None) or error
        raise CheckpointError(f"cannot download {url}: {reason}") from None
    return destination


def fetch(name: str) -> Path:
    """Path of the official checkpoint ``name`` in the cache, downloading it if needed."""
    remote = OFFICIAL_CHECKPOINTS[name]
    destination = cache_dir() / name / remote.filename
    if destination.exists():
        if sha256_file(destination) == remote.sha256:
            return destination
        print(f"jukestyle: {destination} does not match its sha256; downloading it again", file=sys.stderr)
    try:
        return download(remote.url, destination, remote.sha256)
    except CheckpointError as error:
        raise CheckpointError(
            f"{error}. Without network access, put {remote.filename} ({remote.size_mb} MB, sha256 {remote.sha256}) "
            f"at {destination}, or pass a local path"
        ) from None


def fetch_url(url: str) -> Path:
    """Download an arbitrary checkpoint URL into the cache (once); ``#sha256=<hex>`` verifies it."""
    parsed = urllib.parse.urlparse(url)
    expected = urllib.parse.parse_qs(parsed.fragment).get("sha256", [None])[0]
    bare_url = parsed._replace(fragment="").geturl()
    if parsed.scheme == "file":
        path = Path(urllib.request.url2pathname(parsed.path))
        if expected is not None and path.exists() and sha256_file(path) != expected:
            raise CheckpointError(f"{path} does not match the sha256 given in the URL ({expected})")
        return path
    key = hashlib.sha256(bare_url.encode()).hexdigest()[:16]
    destination = cache_dir() / "urls" / key / (Path(parsed.path).name or "checkpoint.pth.tar")
    if destination.exists() and (expected is None or sha256_file(destination) == expected):
        return destination
    path = download(bare_url, destination, expected)
    if expected is None:  # unchecked: say what was received, so that the URL can be pinned
        digest = sha256_file(path)
        print(f"jukestyle: {bare_url} has sha256 {digest}; pin it with {bare_url}#sha256={digest}", file=sys.stderr)
    return path
