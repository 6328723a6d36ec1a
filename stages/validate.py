"""DVC stage `validate`: check the whole params.yaml (unknown keys, types, ranges), a local
data.url (that it is a file, of data.sha256's hash) and that the train stage's estimated peak
memory fits the machine, before any other stage runs.

DVC removes a stage's outputs just before it runs the stage's command, so a bad value found by
the train stage itself would already have cost the last trained model. Every other stage
depends on this one, whose output is the same few bytes whenever params.yaml is valid: a change
of params re-runs this check first and, by itself, nothing else.
"""

import argparse
from pathlib import Path

from imdb_sentiment import cli
from imdb_sentiment.dataset.download import check_local_source
from imdb_sentiment.outputs import write_text
from imdb_sentiment.params import DEFAULT_PATH, load_params
from imdb_sentiment.training.memory import check_memory

VALID = f"{DEFAULT_PATH} is valid\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("marker", type=Path, help=f"file to write when {DEFAULT_PATH} is valid")
    args = parser.parse_args()
    params = load_params()
    check_local_source(params.data.url, params.data.sha256)
    check_memory(params)
    write_text(args.marker, VALID)
    print(f"validate: {DEFAULT_PATH} is valid")


if __name__ == "__main__":
    cli.run("validate", main)
