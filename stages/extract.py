"""DVC stage `extract`: the archive's reviews to one JSON Lines file per split (train, test, and
unsup for the unlabeled ones)."""

import argparse
import sys
import time
from pathlib import Path

from imdb_sentiment import cli
from imdb_sentiment.dataset.extract import extract
from imdb_sentiment.outputs import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("archive", type=Path)
    parser.add_argument("reviews", type=Path, help="folder for train.jsonl, test.jsonl and unsup.jsonl")
    parser.add_argument("counts", type=Path, help="JSON file for the number of reviews per split")
    args = parser.parse_args()
    start = time.perf_counter()
    report = extract(args.archive, args.reviews)
    for problem, n in (("empty reviews skipped", report.skipped_empty),
                       ("reviews with invalid UTF-8 (bytes replaced)", report.replaced_non_utf8),
                       ("reviews over 1 MiB (cut)", report.truncated)):
        if n:
            print(f"extract: warning: {n} {problem}", file=sys.stderr)
    write_json(args.counts, report.counts)
    summary = "; ".join(
        f"{split}: {c['total']:,}" + (f" ({c['neg']:,} neg, {c['pos']:,} pos)" if "neg" in c else " unlabeled")
        for split, c in report.counts.items()
    )
    print(f"extract: {summary} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    cli.run("extract", main)
