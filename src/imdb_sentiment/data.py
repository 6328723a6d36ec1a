"""Getting the reviews: download the IMDB archive, extract its labeled splits, read them back.

The archive is untrusted input. Download verifies the sha256 and never leaves a partial file
at its output path; extraction vets every member with tarfile's ``data`` filter, reads the
labeled splits ``{train,test}/{neg,pos}`` and the unlabeled reviews of ``train/unsup`` (never a
class: they go to a file of their own, with label -1) and writes each as one JSON Lines file
instead of 100,000 loose files.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm import tqdm

from imdb_sentiment.errors import PipelineError
from imdb_sentiment.outputs import atomic_path

SPLITS = ("train", "test")
UNLABELED = "unsup"  # train/unsup: written as unsup.jsonl, label -1, for pseudo-labelling
CLASS_NAMES = ("neg", "pos")  # label 0, label 1; any other folder (train/unsup) is not a class
MAX_REVIEW_BYTES = 1 << 20  # a review is a paragraph or two; more is kept only up to here
OFFLINE_HINT = (
    "to run offline, point data.url at a local copy: "
    "dvc exp run -S data.url=/path/to/aclImdb_v1.tar.gz -S data.sha256=<its sha256>"
)
_CHUNK = 1 << 20
_REVIEW = re.compile(r"^aclImdb/(train|test)/(neg|pos)/([^/]+\.txt)$")
_UNLABELED_REVIEW = re.compile(r"^aclImdb/train/(unsup)/([^/]+\.txt)$")


# --- download -------------------------------------------------------------------------------


def _local_source(url: str) -> Path | None:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter is a Windows drive
        raise PipelineError(f"data.url: unsupported scheme {parsed.scheme!r} in {url!r}; use http(s)://, file:// or a path")
    return Path(url).expanduser()


def _progress(total: int | None, initial: int, label: str) -> tqdm:
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=label, file=sys.stderr, disable=None, mininterval=1.0)


def _copy_local(source: Path, dest: Path) -> None:
    if not source.is_file():
        raise PipelineError(f"data.url: {source} is not a file; expected the aclImdb_v1.tar.gz archive")
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
    source = _local_source(url)
    with atomic_path(dest) as tmp:
        if source is None:
            _fetch_http(url, tmp, retries, timeout)
        else:
            _copy_local(source, tmp)
        digest = sha256_of(tmp)
        if sha256 and digest != sha256:
            raise PipelineError(
                f"sha256 mismatch for data.url {url}: expected {sha256} (data.sha256), got {digest}"
            )
        _check_gzip(tmp, url)
    return digest


# --- extract --------------------------------------------------------------------------------


@dataclass
class ExtractReport:
    counts: dict[str, dict[str, int]]
    skipped_empty: int = 0
    replaced_non_utf8: int = 0
    truncated: int = 0


def _vet(member: tarfile.TarInfo, dest: Path) -> None:
    """Refuse any member that extracting could turn into a write outside ``dest``."""
    try:
        if member.name.startswith(("/", os.sep)):  # the data filter would only strip the "/"
            raise tarfile.AbsolutePathError(member)
        tarfile.data_filter(member, str(dest))
    except tarfile.FilterError as exc:
        raise PipelineError(f"unsafe archive member {member.name!r}: {exc}; refusing the archive") from exc


def _read_review(tar: tarfile.TarFile, member: tarfile.TarInfo, report: ExtractReport) -> str | None:
    f = tar.extractfile(member)
    raw = f.read(MAX_REVIEW_BYTES + 1) if f else b""
    if len(raw) > MAX_REVIEW_BYTES:
        raw = raw[:MAX_REVIEW_BYTES]
        report.truncated += 1
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        report.replaced_non_utf8 += 1
    if not text.strip():
        report.skipped_empty += 1
        return None
    return text


def _members(tar: tarfile.TarFile, compressed: BinaryIO, bar: tqdm):
    """The archive's members as they are read, ``bar`` following the compressed bytes read:
    the archive's size is known up front, its number of members only at its end."""
    for member in tar:
        bar.update(compressed.tell() - bar.n)
        yield member


def _collect(archive: Path, dest: Path) -> tuple[dict[str, list[dict]], ExtractReport]:
    # keyed by id: a path listed twice in a tar is one file, the later copy wins (as in tar -x)
    records: dict[str, dict[str, dict]] = {split: {} for split in (*SPLITS, UNLABELED)}
    report = ExtractReport(counts={})
    with (archive.open("rb") as compressed, tarfile.open(fileobj=compressed, mode="r:gz") as tar,
          _progress(archive.stat().st_size, 0, "extract") as bar):
        for member in _members(tar, compressed, bar):
            _vet(member, dest)
            name = member.name.removeprefix("./")
            if match := _REVIEW.match(name):
                split, cls, file_name = match.groups()
            elif match := _UNLABELED_REVIEW.match(name):
                (cls, file_name), split = match.groups(), UNLABELED
            else:
                continue
            if not member.isfile():
                raise PipelineError(f"archive member {member.name!r} is a link or special file, not a review")
            text = _read_review(tar, member, report)
            review_id = f"{cls}/{file_name}"
            records[split].pop(review_id, None)
            if text is not None:
                label = -1 if split == UNLABELED else CLASS_NAMES.index(cls)
                records[split][review_id] = {"id": review_id, "label": label, "text": text}
        while tar.fileobj.read(_CHUNK):  # read to the end: only there does gzip check its length and CRC
            pass
        bar.update(compressed.tell() - bar.n)
    return {split: sorted(rows.values(), key=lambda r: r["id"]) for split, rows in records.items()}, report


def extract(archive: Path, out_dir: Path) -> ExtractReport:
    """Write ``out_dir/{train,test}.jsonl`` from the archive's labeled splits and
    ``out_dir/unsup.jsonl`` from its unlabeled reviews (none is no error); count them."""
    if not archive.is_file():
        raise PipelineError(f"{archive} does not exist; run the download stage first")
    try:
        records, report = _collect(archive, out_dir.resolve())
    except (tarfile.ReadError, EOFError, zlib.error, OSError) as exc:
        raise PipelineError(f"{archive} is not a complete gzip-compressed tar archive ({exc})") from exc
    for split in SPLITS:
        counts = {cls: sum(r["label"] == i for r in records[split]) for i, cls in enumerate(CLASS_NAMES)}
        for cls, n in counts.items():
            if n == 0:
                raise PipelineError(
                    f"{archive} holds no reviews in aclImdb/{split}/{cls}/; "
                    "expected the official layout aclImdb/{train,test}/{neg,pos}/*.txt"
                )
        report.counts[split] = {**counts, "total": sum(counts.values())}
    report.counts[UNLABELED] = {"total": len(records[UNLABELED])}
    with atomic_path(out_dir, directory=True) as tmp:
        for split in (*SPLITS, UNLABELED):
            with (tmp / f"{split}.jsonl").open("w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records[split])
    return report


def read_split(path: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """Texts, labels (int8; -1 for the unlabeled reviews) and ids of one split written by :func:`extract`."""
    if not path.is_file():
        raise PipelineError(f"{path} does not exist; run the extract stage first")
    texts, labels, ids = [], [], []
    with path.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(row["label"])
            ids.append(row["id"])
    return texts, np.asarray(labels, dtype=np.int8), ids
