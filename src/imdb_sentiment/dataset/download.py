"""Getting the archive: download the IMDB archive named by ``data.url`` (http(s), ``file://`` or a
local path) and verify its sha256, never leaving a partial file at the output path.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from imdb_sentiment.errors import PipelineError
from imdb_sentiment.outputs import atomic_path

OFFLINE_HINT = (
    "to run offline, point data.url at a local copy: "
    "dvc exp run -S data.url=/path/to/aclImdb_v1.tar.gz -S data.sha256=<its sha256>"
)
_CHUNK = 1 << 20

def relative_base() -> Path:
    """What a relative local ``data.url`` is relative to: the DVC project's root. DVC sets
    ``DVC_ROOT`` to it for every stage, also in a queued experiment, which runs in a copy of the
    project under ``.dvc/tmp/exps``; outside DVC, the current folder."""
    return Path(os.environ.get("DVC_ROOT") or ".").resolve()


def local_source(url: str) -> Path | None:
    """The local file ``url`` names (``file://`` or a path, a relative one from
    :func:`relative_base`), or None for an http(s) URL."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter is a Windows drive
        raise PipelineError(f"data.url: unsupported scheme {parsed.scheme!r} in {url!r}; use http(s)://, file:// or a path")
    path = Path(url).expanduser()
    return path if path.is_absolute() else Path(os.path.normpath(relative_base() / path))


def _named(url: str, source: Path) -> str:
    """``url`` and, where it is relative, the path it was resolved to."""
    return url if str(source) == url else f"{url} (that is {source})"


def check_local_source(url: str, sha256: str) -> None:
    """For ``validate``, before DVC removes any output: a local ``data.url`` must be a file and,
    with ``data.sha256``, have that hash. An http(s) URL is checked by ``download`` alone."""
    source = local_source(url)
    if source is None:
        return
    if not source.is_file():
        raise PipelineError(f"data.url: {_named(url, source)} is not a file; expected the aclImdb_v1.tar.gz archive")
    if sha256 and (digest := sha256_of(source)) != sha256:
        raise PipelineError(f"sha256 mismatch for data.url {_named(url, source)}: expected {sha256} (data.sha256), "
                            f"got {digest}")


def _progress(total: int | None, initial: int, label: str) -> tqdm:
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=label, file=sys.stderr, disable=None, mininterval=1.0)


def _copy_local(url: str, source: Path, dest: Path) -> None:
    if not source.is_file():
        raise PipelineError(f"data.url: {_named(url, source)} is not a file; expected the aclImdb_v1.tar.gz archive")
    with source.open("rb") as src, dest.open("wb") as out, _progress(source.stat().st_size, 0, "copy") as bar:
        while chunk := src.read(_CHUNK):
            out.write(chunk)
            bar.update(len(chunk))


def _http_once(url: str, dest: Path, timeout: float) -> None:
    """One attempt: resume from what ``dest`` holds when the server honours Range."""
    have = dest.stat().st_size
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if have and response.status != 206:
            have = 0  # the server sent the whole file again
        length = response.headers.get("Content-Length")
        total = have + int(length) if length else None
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("text/"):
            raise PipelineError(f"data.url {url} served {content_type}, not the archive; check the URL")
        with dest.open("r+b" if have else "wb") as out, _progress(total, have, "download") as bar:
            out.seek(have)
            out.truncate()
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
        if total is not None and dest.stat().st_size < total:
            raise http.client.IncompleteRead(b"", total - dest.stat().st_size)


def _fetch_http(url: str, dest: Path, retries: int, timeout: float) -> None:
    dest.write_bytes(b"")
    for attempt in range(1, retries + 1):
        try:
            _http_once(url, dest, timeout)
            return
        except urllib.error.HTTPError as exc:
            if exc.code == 416:  # asked to resume past the end: start over
                dest.write_bytes(b"")
            elif exc.code < 500:
                raise PipelineError(f"data.url {url}: HTTP {exc.code} {exc.reason}; check the URL") from exc
            error = f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            error = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
        if attempt < retries:
            print(f"download: attempt {attempt} failed ({error}); retrying", file=sys.stderr)
            time.sleep(min(2 ** attempt, 10) * 0.5)
    raise PipelineError(f"cannot download data.url {url} ({error}); {OFFLINE_HINT}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_gzip(path: Path, url: str) -> None:
    with path.open("rb") as f:
        head = f.read(64)
    if not head.startswith(b"\x1f\x8b"):
        preview = head[:24].decode("ascii", "replace").split("\n")[0]
        raise PipelineError(f"data.url {url} is not a gzip archive (it starts with {preview!r})")


def download(url: str, sha256: str, dest: Path, *, retries: int = 4, timeout: float = 60.0) -> str:
    """Fetch ``url`` (http(s), file:// or a path) to ``dest``; verify it; return its sha256."""
    source = local_source(url)
    with atomic_path(dest) as tmp:
        if source is None:
            _fetch_http(url, tmp, retries, timeout)
        else:
            _copy_local(url, source, tmp)
        digest = sha256_of(tmp)
        if sha256 and digest != sha256:
            raise PipelineError(
                f"sha256 mismatch for data.url {url}: expected {sha256} (data.sha256), got {digest}"
            )
        _check_gzip(tmp, url)
    return digest
