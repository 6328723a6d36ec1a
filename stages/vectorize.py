"""DVC stage `vectorize`: split train/validation, adapt TextVectorization on the training part
only, write token ids and labels of every split plus the vocabulary and a few statistics."""

import argparse
import time
from pathlib import Path

from imdb_sentiment import cli

cli.quiet_tensorflow()

from imdb_sentiment.outputs import write_json  # noqa: E402
from imdb_sentiment.params import load_params  # noqa: E402
from imdb_sentiment.features.vectorized import vectorize_splits  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("reviews", type=Path, help="folder with train.jsonl and test.jsonl")
    parser.add_argument("vectorized", type=Path, help="folder for the token ids and vocabulary")
    parser.add_argument("stats", type=Path, help="JSON file for vocabulary and truncation statistics")
    args = parser.parse_args()
    params = load_params()
    start = time.perf_counter()
    stats = vectorize_splits(params, args.reviews, args.vectorized)
    write_json(args.stats, stats)
    print(f"vectorize: vocabulary {stats['vocabulary_size']:,}, "
          f"out-of-vocabulary {stats['oov_share']:.2%}, truncated {stats['truncated_share']:.1%} "
          f"in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    cli.run("vectorize", main)
