"""Tiny IMDB archives for the tests: the official ``aclImdb_v1.tar.gz`` layout, and hostile variants.

``make_archive(path)`` writes a small, deterministic (byte-for-byte reproducible) archive::

    aclImdb/README
    aclImdb/imdb.vocab
    aclImdb/{train,test}/{pos,neg}/<i>_<rating>.txt   DEFAULT_PER_CLASS reviews per folder
    aclImdb/train/unsup/<i>_0.txt                     unlabeled reviews: never a class
    aclImdb/{train,test}/urls_{pos,neg}.txt, train/urls_unsup.txt  each review's movie page, 2 reviews a movie
    aclImdb/{train,test}/labeledBow.feat

Review texts look like the real ones: ``<br />`` line breaks, punctuation, mixed case, and
vocabulary that differs between pos and neg. Hostile members come from the ``*_member``
builders below and go in through ``extra_members``; each builder returns one
``(TarInfo, bytes | None)`` pair.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

SPLITS = ("train", "test")
CLASSES = ("neg", "pos")  # label 0, label 1
DEFAULT_PER_CLASS = 8
MTIME = 1_300_000_000  # fixed, so that the archive's bytes (and its sha256) never change

Member = tuple[tarfile.TarInfo, "bytes | None"]
Reviews = Mapping[str, Sequence["str | bytes"]]  # "train/pos" -> review texts, in file order

_POS_WORDS = ("wonderful", "Brilliant", "moving", "superb", "delightful", "GREAT", "charming", "fun")
_NEG_WORDS = ("awful", "Boring", "dull", "terrible", "pointless", "WORST", "clumsy", "tedious")
_TOPICS = ("the acting", "The plot", "this film's score", "the ending", "Its pacing", "the cast")


def review_text(split: str, cls: str, i: int) -> str:
    """The deterministic text of review ``i`` of ``split/cls``."""
    words = _POS_WORDS if cls == "pos" else _NEG_WORDS
    a, b = words[i % len(words)], words[(3 * i + 1) % len(words)]
    topic = _TOPICS[(i + (split == "test")) % len(_TOPICS)]
    verdict = "Highly recommended!" if cls == "pos" else "Avoid it..."
    return (
        f"I watched this ({split} #{i}) last night: {topic} was {a}, really {b}.<br /><br />"
        f"Honestly? {a.capitalize()} & {b.lower()}; {verdict} \"{b.upper()}\" - {i}/10"
    )


def rating(cls: str, i: int) -> int:
    """The star rating in a review's file name: 7-10 for pos, 1-4 for neg, as in aclImdb."""
    return (7 + i % 4) if cls == "pos" else (1 + i % 4)


def review_name(cls: str, i: int) -> str:
    return f"{i}_{rating(cls, i)}.txt"


def movie_of(split: str, cls: str, i: int) -> str:
    """The movie of review ``i`` of ``split/cls`` (its line in ``urls_<cls>.txt``): two reviews a
    movie, none shared by train and test, as in aclImdb."""
    first = {"train": 1, "test": 5001, "unsup": 9001}[split] + (500 if cls == "pos" else 0)
    return f"tt{first + i // 2:07d}"


def urls_text(split: str, cls: str, n: int) -> str:
    return "".join(f"http://www.imdb.com/title/{movie_of(split, cls, i)}/usercomments\n" for i in range(n))


def default_reviews(per_class: int = DEFAULT_PER_CLASS) -> dict[str, list[str]]:
    """``{"train/neg": [...], "train/pos": [...], "test/neg": [...], "test/pos": [...]}``."""
    return {f"{s}/{c}": [review_text(s, c, i) for i in range(per_class)] for s in SPLITS for c in CLASSES}


def expected_records(reviews: Reviews, split: str) -> list[dict]:
    """The rows that extracting ``split`` of ``make_archive(path, reviews)`` should give, by id."""
    rows = []
    for cls_index, cls in enumerate(CLASSES):
        for i, text in enumerate(reviews.get(f"{split}/{cls}", ())):
            if isinstance(text, bytes):
                text = text.decode("utf-8", errors="replace")
            if text.strip():
                rows.append({"id": f"{cls}/{review_name(cls, i)}", "label": cls_index, "text": text,
                             "movie": movie_of(split, cls, i)})
    return sorted(rows, key=lambda r: r["id"])


# --- members -------------------------------------------------------------------------------


def _info(name: str, type_: bytes = tarfile.REGTYPE, *, size: int = 0, linkname: str = "",
          mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname, info.mode, info.mtime = type_, size, linkname, mode, MTIME
    info.uid = info.gid = 1000
    info.uname = info.gname = "maas"
    return info


def file_member(name: str, data: str | bytes) -> Member:
    data = data.encode("utf-8") if isinstance(data, str) else data
    return _info(name, size=len(data)), data


def dir_member(name: str) -> Member:
    return _info(name, tarfile.DIRTYPE, mode=0o755), None


def traversal_member(name: str = "../evil", data: bytes = b"escaped\n") -> Member:
    """A regular file whose name climbs out of the extraction folder."""
    return file_member(name, data)


def absolute_member(name: str = "/tmp/evil", data: bytes = b"escaped\n") -> Member:
    """A regular file with an absolute name."""
    return file_member(name, data)


def symlink_outside_member(name: str = "aclImdb/evil-link", target: str = "../../etc/passwd") -> Member:
    """A symlink that resolves outside the extraction folder."""
    return _info(name, tarfile.SYMTYPE, linkname=target, mode=0o777), None


def hardlink_outside_member(name: str = "aclImdb/evil-hardlink", target: str = "../etc/passwd") -> Member:
    """A hard link to a path outside the extraction folder (hard link targets are archive-relative)."""
    return _info(name, tarfile.LNKTYPE, linkname=target), None


def device_member(name: str = "aclImdb/train/pos/dev-null", major: int = 1, minor: int = 3) -> Member:
    """A character device (1, 3 is /dev/null)."""
    info = _info(name, tarfile.CHRTYPE, mode=0o666)
    info.devmajor, info.devminor = major, minor
    return info, None


def symlink_review_member(name: str = "aclImdb/train/pos/x.txt", target: str = "0_7.txt") -> Member:
    """A symlink at a review path; its target stays inside the archive, so only its type is wrong."""
    return _info(name, tarfile.SYMTYPE, linkname=target, mode=0o777), None


def hardlink_review_member(name: str = "aclImdb/train/pos/y.txt",
                           target: str = "aclImdb/train/pos/0_7.txt") -> Member:
    """A hard link at a review path to a review inside the archive."""
    return _info(name, tarfile.LNKTYPE, linkname=target), None


# --- archives ------------------------------------------------------------------------------


def archive_members(reviews: Reviews | int | None = None, unsup: int = 3, *,
                    root: str = "aclImdb") -> list[Member]:
    """The members of an official-layout archive (see :func:`make_archive`)."""
    if reviews is None or isinstance(reviews, int):
        reviews = default_reviews(DEFAULT_PER_CLASS if reviews is None else reviews)
    members = [dir_member(f"{root}/"),
               file_member(f"{root}/README", "Large Movie Review Dataset v1.0\n\nA tiny stand-in for tests.\n"),
               file_member(f"{root}/imdb.vocab", "the\nand\na\nof\n")]
    for split in SPLITS:
        members.append(dir_member(f"{root}/{split}/"))
        for cls in CLASSES:
            key = f"{split}/{cls}"
            if key not in reviews:
                continue  # the folder is absent from the archive
            members.append(dir_member(f"{root}/{key}/"))
            members += [file_member(f"{root}/{key}/{review_name(cls, i)}", text)
                        for i, text in enumerate(reviews[key])]
            members.append(file_member(f"{root}/{split}/urls_{cls}.txt", urls_text(split, cls, len(reviews[key]))))
        if split == "train":
            members.append(dir_member(f"{root}/train/unsup/"))
            members += [file_member(f"{root}/train/unsup/{i}_0.txt",
                                    f"Unlabeled review {i}. {review_text('unsup', CLASSES[i % 2], i)}")
                        for i in range(unsup)]
            members.append(file_member(f"{root}/train/urls_unsup.txt", urls_text("unsup", "unsup", unsup)))
        members.append(file_member(f"{root}/{split}/labeledBow.feat", "9 0:1 1:2\n"))
    return members


def write_members(path: str | Path, members: Iterable[Member], *, compress: bool = True) -> Path:
    """Write ``members`` as a tar archive, gzip-compressed unless ``compress`` is false."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buffer.getvalue()
    path.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    return path


def make_archive(path: str | Path, reviews: Reviews | int | None = None, unsup: int = 3, *,
                 extra_members: Iterable[Member] = (), root: str = "aclImdb",
                 compress: bool = True) -> Path:
    """Write a tiny ``aclImdb_v1.tar.gz`` at ``path`` and return ``path``.

    ``reviews``: None for :func:`default_reviews` (DEFAULT_PER_CLASS per folder), an int for that
    many per folder, or a mapping ``"train/pos" -> [text, ...]`` (str or raw bytes); a folder missing
    from the mapping is missing from the archive, an empty list gives an empty folder. Review ``i``
    of class ``cls`` is named ``review_name(cls, i)``. ``unsup``: how many train/unsup reviews.
    ``extra_members`` (e.g. ``[traversal_member()]``) go after all the others. ``root="./aclImdb"``
    gives names as ``tar czf x.tar.gz ./aclImdb`` writes them.
    """
    members = archive_members(reviews, unsup, root=root) + list(extra_members)
    return write_members(path, members, compress=compress)
