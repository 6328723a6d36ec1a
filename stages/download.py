"""DVC stage `download`: fetch the IMDB archive named by data.url and verify data.sha256."""

import argparse
import time
from pathlib import Path

from imdb_sentiment import cli
from imdb_sentiment.dataset.download import download
from imdb_sentiment.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("archive", type=Path, help="where to write the archive")
    args = parser.parse_args()
    params = load_params().data
    start = time.perf_counter()
    digest = download(params.url, params.sha256, args.archive)
    verified = "verified" if params.sha256 else "not verified: data.sha256 is empty"
    print(f"download: {args.archive} sha256 {digest} ({verified}) in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    cli.run("download", main)
