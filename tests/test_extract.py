"""extract(): the labeled splits of an official-layout archive to JSON Lines; hostile archives refused."""

from __future__ import annotations

import gzip
import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

import archives
from archives import default_reviews, expected_records, make_archive
from imdb_sentiment.dataset import extract as data
from imdb_sentiment.dataset.extract import MAX_REVIEW_BYTES, extract, read_split
from imdb_sentiment.errors import PipelineError


def classes(counts: dict) -> dict:
    """A split's counts of reviews, without its count of movies."""
    return {key: n for key, n in counts.items() if key != "movies"}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for folders), links not followed."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def work(tmp_path) -> Path:
    """tmp_path/work: the parent of the output folder, which a hostile member would aim at."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def refuse(archive: Path, out: Path) -> str:
    """extract() must fail with one line and write nothing: no output folder, no temporaries
    beside it, no change anywhere in the test's folder (which holds ``out``'s parent)."""
    assert out.parent.parent == archive.parent
    before = snapshot(archive.parent)
    absolute_evil = Path("/tmp/evil").exists()
    with pytest.raises(PipelineError) as info:
        extract(archive, out)
    message = str(info.value)
    assert "\n" not in message, message
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".tmp-")] == []
    assert snapshot(archive.parent) == before
    assert Path("/tmp/evil").exists() == absolute_evil
    return message


# --- a good archive ------------------------------------------------------------------------


def test_labeled_splits_become_jsonl(tmp_path):
    reviews = default_reviews()
    archive = make_archive(tmp_path / "aclImdb_v1.tar.gz", reviews)
    out = tmp_path / "reviews"
    report = extract(archive, out)
    per = archives.DEFAULT_PER_CLASS
    assert report.counts == {**{split: {"neg": per, "pos": per, "total": 2 * per, "movies": per}
                                for split in ("train", "test")}, "unsup": {"total": 3, "movies": 2}}
    assert (report.skipped_empty, report.replaced_non_utf8, report.truncated) == (0, 0, 0)
    assert sorted(p.name for p in out.iterdir()) == ["test.jsonl", "train.jsonl", "unsup.jsonl"]
    for split in ("train", "test"):
        got = rows(out / f"{split}.jsonl")
        assert got == expected_records(reviews, split)  # ids, labels and texts, byte for byte
        assert [r["id"] for r in got] == sorted(r["id"] for r in got)
        assert {r["label"] for r in got if r["id"].startswith("neg/")} == {0}
        assert {r["label"] for r in got if r["id"].startswith("pos/")} == {1}
    text = rows(out / "train.jsonl")[0]["text"]
    assert "<br /><br />" in text and "?" in text and "\"" in text  # texts untouched


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_only(tmp_path, monkeypatch, capsys):
    archive = make_archive(tmp_path / "aclImdb_v1.tar.gz")
    extract(archive, tmp_path / "quiet")
    assert capsys.readouterr().err == ""  # not a terminal: a log stays free of progress bars
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    extract(archive, tmp_path / "shown")
    assert "extract: 100%" in terminal.getvalue()  # the whole archive, by its compressed bytes


def test_a_path_listed_twice_is_one_review_and_the_later_copy_wins(tmp_path):
    name = f"aclImdb/train/pos/{archives.review_name('pos', 0)}"
    archive = make_archive(tmp_path / "a.tar.gz", extra_members=[archives.file_member(name, "Later copy. Great!")])
    report = extract(archive, tmp_path / "reviews")
    assert report.counts["train"]["pos"] == archives.DEFAULT_PER_CLASS
    texts = [r["text"] for r in rows(tmp_path / "reviews/train.jsonl") if r["id"] == f"pos/{archives.review_name('pos', 0)}"]
    assert texts == ["Later copy. Great!"]


def test_rows_are_sorted_by_id_whatever_the_member_order(tmp_path):
    reviews = default_reviews(12)  # "neg/10_3.txt" sorts before "neg/2_3.txt"
    archive = archives.write_members(tmp_path / "a.tar.gz", reversed(archives.archive_members(reviews)))
    extract(archive, tmp_path / "reviews")
    for split in ("train", "test"):
        got = rows(tmp_path / "reviews" / f"{split}.jsonl")
        assert got == expected_records(reviews, split)
        assert [r["id"] for r in got][:4] == ["neg/0_1.txt", "neg/10_3.txt", "neg/11_4.txt", "neg/1_2.txt"]


def test_unsup_reviews_are_never_a_class_but_a_file_of_their_own(tmp_path):
    archive = make_archive(tmp_path / "a.tar.gz", reviews=2, unsup=7)
    out = tmp_path / "reviews"
    report = extract(archive, out)
    assert classes(report.counts["train"]) == {"neg": 2, "pos": 2, "total": 4}
    assert classes(report.counts["unsup"]) == {"total": 7}
    train = rows(out / "train.jsonl")
    assert len(train) == 4
    assert {r["label"] for r in train} == {0, 1}
    assert not any("unsup" in r["id"] or "Unlabeled" in r["text"] for r in train)
    unlabeled = rows(out / "unsup.jsonl")
    assert len(unlabeled) == 7 and {r["label"] for r in unlabeled} == {-1}
    assert all(r["id"].startswith("unsup/") and r["text"].startswith("Unlabeled review") for r in unlabeled)
    texts, labels, ids, _ = read_split(out / "unsup.jsonl")
    assert len(texts) == 7 and set(labels.tolist()) == {-1}


def test_an_archive_without_unsup_gives_an_empty_unlabeled_file(tmp_path):
    report = extract(make_archive(tmp_path / "a.tar.gz", reviews=2, unsup=0), tmp_path / "reviews")
    assert classes(report.counts["unsup"]) == {"total": 0}
    assert (tmp_path / "reviews" / "unsup.jsonl").read_text() == ""


def test_read_split_gives_texts_labels_ids(tmp_path):
    archive = make_archive(tmp_path / "a.tar.gz", reviews=3)
    extract(archive, tmp_path / "reviews")
    texts, labels, ids, _ = read_split(tmp_path / "reviews" / "test.jsonl")
    assert labels.dtype.name == "int8" and labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ids == ["neg/0_1.txt", "neg/1_2.txt", "neg/2_3.txt", "pos/0_7.txt", "pos/1_8.txt", "pos/2_9.txt"]
    assert texts[3] == archives.review_text("test", "pos", 0)


def test_read_split_missing_file(tmp_path):
    with pytest.raises(PipelineError, match="test.jsonl does not exist; run the extract stage first"):
        read_split(tmp_path / "test.jsonl")


def test_dot_slash_member_names(tmp_path):
    """`tar czf x.tar.gz ./aclImdb` writes ./aclImdb/...; those are the same reviews."""
    archive = make_archive(tmp_path / "a.tar.gz", reviews=2, root="./aclImdb")
    assert extract(archive, tmp_path / "reviews").counts["test"]["total"] == 4


def test_non_ascii_and_whitespace_kept_exactly(tmp_path):
    reviews = default_reviews(1)
    reviews["train/pos"] = ["  Amélie — «magnifique» 😀<br />Ünïcödé fine.\r\n"]  # kept byte for byte
    archive = make_archive(tmp_path / "a.tar.gz", reviews)
    extract(archive, tmp_path / "reviews")
    assert "Amélie — «magnifique» 😀" in (tmp_path / "reviews" / "train.jsonl").read_text(encoding="utf-8")
    assert rows(tmp_path / "reviews" / "train.jsonl")[1]["text"] == reviews["train/pos"][0]


# --- odd reviews ---------------------------------------------------------------------------


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    reviews = default_reviews(2)
    reviews["test/neg"] = [b"Bad \xff\xfe bytes, caf\xe9 in Latin-1.", reviews["test/neg"][1]]
    archive = make_archive(tmp_path / "a.tar.gz", reviews)
    report = extract(archive, tmp_path / "reviews")
    assert report.replaced_non_utf8 == 1
    assert classes(report.counts["test"]) == {"neg": 2, "pos": 2, "total": 4}
    first = rows(tmp_path / "reviews" / "test.jsonl")[0]
    assert first["id"] == "neg/0_1.txt"
    assert first["text"] == "Bad \ufffd\ufffd bytes, caf\ufffd in Latin-1."


def test_empty_reviews_are_skipped_and_counted(tmp_path):
    reviews = default_reviews(3)
    reviews["train/pos"][0] = ""
    reviews["train/neg"][2] = " \n\t "
    archive = make_archive(tmp_path / "a.tar.gz", reviews)
    report = extract(archive, tmp_path / "reviews")
    assert report.skipped_empty == 2
    assert classes(report.counts["train"]) == {"neg": 2, "pos": 2, "total": 4}
    ids = [r["id"] for r in rows(tmp_path / "reviews" / "train.jsonl")]
    assert "pos/0_7.txt" not in ids and "neg/2_3.txt" not in ids and len(ids) == 4


def test_huge_review_is_cut_to_one_mib(tmp_path):
    assert MAX_REVIEW_BYTES == 1 << 20
    reviews = default_reviews(2)
    reviews["train/pos"][1] = "Long. " * (5 * (1 << 20) // 6)  # about 5 MB
    archive = make_archive(tmp_path / "a.tar.gz", reviews)
    report = extract(archive, tmp_path / "reviews")
    assert report.truncated == 1
    assert classes(report.counts["train"]) == {"neg": 2, "pos": 2, "total": 4}
    text = rows(tmp_path / "reviews" / "train.jsonl")[3]["text"]
    assert len(text.encode("utf-8")) == MAX_REVIEW_BYTES
    assert text == reviews["train/pos"][1][:MAX_REVIEW_BYTES]


def test_review_of_exactly_one_mib_is_kept_whole(tmp_path):
    reviews = default_reviews(1)
    reviews["test/pos"] = ["x" * MAX_REVIEW_BYTES]
    report = extract(make_archive(tmp_path / "a.tar.gz", reviews), tmp_path / "reviews")
    assert report.truncated == 0
    assert len(rows(tmp_path / "reviews" / "test.jsonl")[1]["text"]) == MAX_REVIEW_BYTES


# --- hostile archives ----------------------------------------------------------------------


HOSTILE = {
    "traversal": (lambda tmp: archives.traversal_member(), "outside the destination"),
    "traversal-nested": (lambda tmp: archives.traversal_member("aclImdb/../../evil"), "outside the destination"),
    "absolute": (lambda tmp: archives.absolute_member(), "absolute path"),
    "absolute-into-tmp": (lambda tmp: archives.absolute_member(str(tmp / "abs-evil")), "absolute path"),
    "symlink-outside": (lambda tmp: archives.symlink_outside_member(), "outside the destination"),
    "symlink-absolute": (lambda tmp: archives.symlink_outside_member(target="/etc/passwd"), "absolute path"),
    "hardlink-outside": (lambda tmp: archives.hardlink_outside_member(), "outside the destination"),
    "hardlink-absolute": (lambda tmp: archives.hardlink_outside_member(target="/etc/passwd"), "absolute path"),
    "device": (lambda tmp: archives.device_member(), "special file"),
    "fifo-at-review-path": (lambda tmp: _fifo("aclImdb/test/neg/99_1.txt"), "special file"),
    "symlink-at-review-path": (lambda tmp: archives.symlink_review_member(), "link or special file"),
    "hardlink-at-review-path": (lambda tmp: archives.hardlink_review_member(), "link or special file"),
}


def _fifo(name: str):
    info, _ = archives.device_member(name)
    info.type = tarfile.FIFOTYPE
    return info, None


@pytest.mark.parametrize("first", [False, True], ids=["after-reviews", "before-reviews"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_refuses_the_archive(tmp_path, work, case, first):
    build, words = HOSTILE[case]
    member = build(tmp_path)
    archive = tmp_path / "aclImdb_v1.tar.gz"
    if first:
        archives.write_members(archive, [member] + archives.archive_members())
    else:
        make_archive(archive, extra_members=[member])
    message = refuse(archive, work / "reviews")
    assert repr(member[0].name) in message
    assert words in message
    assert not (tmp_path / "evil").exists() and not (tmp_path / "abs-evil").exists()


def test_hostile_archive_leaves_an_existing_output_intact(tmp_path, work):
    out = work / "reviews"
    extract(make_archive(tmp_path / "good.tar.gz", reviews=2), out)
    before = snapshot(out)
    bad = make_archive(tmp_path / "bad.tar.gz", extra_members=[archives.symlink_outside_member()])
    with pytest.raises(PipelineError, match="unsafe archive member 'aclImdb/evil-link'"):
        extract(bad, out)
    assert snapshot(out) == before
    assert sorted(p.name for p in work.iterdir()) == ["reviews"]


def test_failure_while_writing_keeps_the_previous_output(tmp_path, work, monkeypatch):
    """atomic_path: the new folder replaces the old one only once both files are complete."""
    out = work / "reviews"
    extract(make_archive(tmp_path / "good.tar.gz", reviews=2), out)
    before = snapshot(out)

    class FailingJson:
        calls = 0

        @classmethod
        def dumps(cls, obj, **kwargs):
            cls.calls += 1
            if cls.calls > 5:  # well into train.jsonl, before test.jsonl
                raise OSError(28, "No space left on device")
            return json.dumps(obj, **kwargs)

    monkeypatch.setattr(data, "json", FailingJson)
    with pytest.raises(OSError, match="No space left"):
        extract(make_archive(tmp_path / "other.tar.gz", reviews=4), out)
    assert FailingJson.calls == 6
    assert snapshot(out) == before
    assert sorted(p.name for p in work.iterdir()) == ["reviews"]


def test_successful_extraction_replaces_the_whole_folder(tmp_path, work):
    out = work / "reviews"
    out.mkdir()
    (out / "stale.jsonl").write_text("{}\n")
    (out / "train.jsonl").write_text("old\n")
    report = extract(make_archive(tmp_path / "a.tar.gz", reviews=2), out)
    assert sorted(p.name for p in out.iterdir()) == ["test.jsonl", "train.jsonl", "unsup.jsonl"]
    assert len(rows(out / "train.jsonl")) == report.counts["train"]["total"] == 4
    assert sorted(p.name for p in work.iterdir()) == ["reviews"]


# --- not an archive ------------------------------------------------------------------------


def _truncated(path: Path, tmp: Path, keep: float) -> Path:
    raw = make_archive(tmp / "whole.tar.gz").read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path


def _tail_cut(path: Path, tmp: Path) -> Path:
    """Only the gzip trailer (CRC and length) is missing; every review is still there."""
    raw = make_archive(tmp / "whole.tar.gz").read_bytes()
    path.write_bytes(raw[:-8])
    return path


def _bad_crc(path: Path, tmp: Path) -> Path:
    raw = bytearray(make_archive(tmp / "whole.tar.gz").read_bytes())
    raw[-8] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


BROKEN = {
    "truncated-half": lambda path, tmp: _truncated(path, tmp, 0.5),
    "truncated-90%": lambda path, tmp: _truncated(path, tmp, 0.9),
    "truncated-trailer": _tail_cut,
    "bad-crc": _bad_crc,
    "plain-tar": lambda path, tmp: make_archive(path, compress=False),
    "empty-file": lambda path, tmp: path.write_bytes(b""),
    "text-file": lambda path, tmp: path.write_text("<html><body>Not Found</body></html>\n"),
    "gzip-of-text": lambda path, tmp: path.write_bytes(gzip.compress(b"just some text\n" * 100)),
    "empty-gzip": lambda path, tmp: path.write_bytes(gzip.compress(b"")),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_archive_is_not_a_complete_gzip_tar(tmp_path, work, case):
    archive = tmp_path / "aclImdb_v1.tar.gz"
    BROKEN[case](archive, tmp_path)
    (tmp_path / "whole.tar.gz").unlink(missing_ok=True)
    message = refuse(archive, work / "reviews")
    assert message.startswith(f"{archive} is not a complete gzip-compressed tar archive (")


def test_missing_archive(tmp_path, work):
    message = refuse(tmp_path / "aclImdb_v1.tar.gz", work / "reviews")
    assert message == f"{tmp_path / 'aclImdb_v1.tar.gz'} does not exist; run the download stage first"


# --- wrong layout --------------------------------------------------------------------------


def test_missing_class_folder_is_named(tmp_path, work):
    reviews = default_reviews(2)
    del reviews["test/neg"]
    message = refuse(make_archive(tmp_path / "a.tar.gz", reviews), work / "reviews")
    assert "holds no reviews in aclImdb/test/neg/" in message
    assert "aclImdb/{train,test}/{neg,pos}/*.txt" in message


def test_missing_split_is_named(tmp_path, work):
    reviews = {k: v for k, v in default_reviews(2).items() if not k.startswith("test/")}
    message = refuse(make_archive(tmp_path / "a.tar.gz", reviews), work / "reviews")
    assert "holds no reviews in aclImdb/test/neg/" in message


@pytest.mark.parametrize("content", [[], [""], ["  ", "\n"]], ids=["no-files", "empty-file", "blank-files"])
def test_empty_class_folder_is_named(tmp_path, work, content):
    reviews = default_reviews(2)
    reviews["train/pos"] = content
    message = refuse(make_archive(tmp_path / "a.tar.gz", reviews), work / "reviews")
    assert "holds no reviews in aclImdb/train/pos/" in message


def test_wrong_top_folder_is_not_read(tmp_path, work):
    """Reviews under another root (e.g. a repacked archive) are not the official layout."""
    message = refuse(make_archive(tmp_path / "a.tar.gz", reviews=2, root="imdb"), work / "reviews")
    assert "holds no reviews in aclImdb/train/neg/" in message


def test_output_not_created_outside_when_out_dir_is_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_archive(tmp_path / "bad.tar.gz", extra_members=[archives.traversal_member("../../escaped")])
    with pytest.raises(PipelineError, match="outside the destination"):
        extract(Path("bad.tar.gz"), Path("data/reviews"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz"]


def test_each_review_names_its_movie_from_the_urls_files_and_the_counts_say_how_many(tmp_path):
    archive = make_archive(tmp_path / "aclImdb_v1.tar.gz", unsup=4)
    report = extract(archive, tmp_path / "reviews")
    per = archives.DEFAULT_PER_CLASS
    assert report.counts["train"]["movies"] == report.counts["test"]["movies"] == per  # 2 reviews a movie
    assert report.counts["unsup"]["movies"] == 2
    train, test = rows(tmp_path / "reviews" / "train.jsonl"), rows(tmp_path / "reviews" / "test.jsonl")
    assert {r["id"]: r["movie"] for r in train}["pos/3_10.txt"] == archives.movie_of("train", "pos", 3)
    assert not {r["movie"] for r in train} & {r["movie"] for r in test}


def test_without_urls_files_the_movie_is_unknown(tmp_path):
    members = [m for m in archives.archive_members() if "/urls_" not in m[0].name]
    archive = archives.write_members(tmp_path / "aclImdb_v1.tar.gz", members)
    extract(archive, tmp_path / "reviews")
    assert {r["movie"] for r in rows(tmp_path / "reviews" / "train.jsonl")} == {""}
