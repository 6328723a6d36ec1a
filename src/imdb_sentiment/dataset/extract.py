"""Reading the archive: extract its labeled splits and unlabeled reviews, read them back.

The archive is untrusted input. Extraction vets every member with tarfile's ``data`` filter,
reads the labeled splits ``{train,test}/{neg,pos}`` and the unlabeled reviews of ``train/unsup``
(never a class: they go to a file of their own, with label -1) and writes each as one JSON Lines
file instead of 100,000 loose files, its rows sorted by review id: the output does not depend on
the archive's member order or compression.

Each row names the review's movie (``tt0453418``), from the archive's ``urls_{neg,pos,unsup}.txt``
files, whose line i is the IMDB page of review ``i_*.txt``; "" where the archive has none. The
dataset's train and test halves hold disjoint movies, and a validation split must too
(:func:`imdb_sentiment.features.text.split_train_validation`).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tarfile
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
_CHUNK = 1 << 20
_REVIEW = re.compile(r"^aclImdb/(train|test)/(neg|pos)/([^/]+\.txt)$")
_UNLABELED_REVIEW = re.compile(r"^aclImdb/train/(unsup)/([^/]+\.txt)$")
_URLS = re.compile(r"^aclImdb/(train|test)/urls_(neg|pos|unsup)\.txt$")
_MOVIE = re.compile(r"/title/(tt\d+)")
MAX_URLS_BYTES = 16 << 20  # 50,000 lines of about 50 bytes: 2.5 MB


def _progress(total: int, label: str) -> tqdm:
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, file=sys.stderr,
                disable=None, mininterval=1.0)


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
    movies: dict[str, list[str]] = {}  # "neg/" (the folder of the review ids) -> movie of each line
    report = ExtractReport(counts={})
    with (archive.open("rb") as compressed, tarfile.open(fileobj=compressed, mode="r:gz") as tar,
          _progress(archive.stat().st_size, "extract") as bar):
        for member in _members(tar, compressed, bar):
            _vet(member, dest)
            name = member.name.removeprefix("./")
            if match := _REVIEW.match(name):
                split, cls, file_name = match.groups()
            elif match := _UNLABELED_REVIEW.match(name):
                (cls, file_name), split = match.groups(), UNLABELED
            elif (match := _URLS.match(name)) and member.isfile():
                split, cls = match.groups()
                movies[f"{UNLABELED if cls == UNLABELED else split}:{cls}"] = _movies(tar, member)
                continue
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
    for split, rows in records.items():
        for row in rows.values():
            row["movie"] = _movie_of(row["id"], movies.get(f"{split}:{row['id'].split('/')[0]}", []))
    return {split: sorted(rows.values(), key=lambda r: r["id"]) for split, rows in records.items()}, report


def _movies(tar: tarfile.TarFile, member: tarfile.TarInfo) -> list[str]:
    """The movie id of each line of a ``urls_*.txt`` file ("" where a line names none)."""
    f = tar.extractfile(member)
    lines = (f.read(MAX_URLS_BYTES) if f else b"").decode("utf-8", "replace").splitlines()
    return [match.group(1) if (match := _MOVIE.search(line)) else "" for line in lines]


def _movie_of(review_id: str, movies: list[str]) -> str:
    """Review ``neg/123_4.txt`` is line 123 of its folder's urls file."""
    number = review_id.split("/")[-1].split("_")[0]
    return movies[int(number)] if number.isdigit() and int(number) < len(movies) else ""


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
        report.counts[split] = {**counts, "total": sum(counts.values()), "movies": _movie_count(records[split])}
    report.counts[UNLABELED] = {"total": len(records[UNLABELED]), "movies": _movie_count(records[UNLABELED])}
    with atomic_path(out_dir, directory=True) as tmp:
        for split in (*SPLITS, UNLABELED):
            with (tmp / f"{split}.jsonl").open("w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records[split])
    return report


def _movie_count(rows: list[dict]) -> int:
    return len({row["movie"] for row in rows} - {""})


def read_split(path: Path) -> tuple[list[str], np.ndarray, list[str], list[str]]:
    """Texts, labels (int8; -1 for the unlabeled reviews), ids and movies ("" where unknown) of one
    split written by :func:`extract`."""
    if not path.is_file():
        raise PipelineError(f"{path} does not exist; run the extract stage first")
    texts, labels, ids, movies = [], [], [], []
    with path.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(row["label"])
            ids.append(row["id"])
            movies.append(row.get("movie", ""))
    return texts, np.asarray(labels, dtype=np.int8), ids, movies
