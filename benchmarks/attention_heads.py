"""What heads cost: time per training step and peak memory of the default model with the
self-attention pooling (``pooling: attention``, every position a query: (steps x steps) weights a
head) at 1, 2, 4 and 8 heads, with the attention explicit and computed in blocks, side by side
in one run. (The defaults' learned query has (steps) weights a head: its heads cost next to
nothing, and it has no blocked form.)

    python benchmarks/attention_heads.py [--length 800] [--block 64] [--steps 6]

Each cell is a fresh process (its peak memory its own) that trains the defaults' classifier
(params.yaml: the n-gram branch included) on a batch of ``batch_size`` random reviews of
``--length`` tokens: 800 is the longest length group the train stage meets (a review cut at
``sequence_length``), 256 a typical one. The time is the median of ``--steps`` steps after two
to warm up; the memory is the process's peak resident set. The cells run interleaved, heads
outermost, so that a machine's drift falls on both forms alike.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]

CELL = r"""
import json, resource, sys, time
from imdb_sentiment import cli
cli.quiet_tensorflow()
import numpy as np, yaml
from imdb_sentiment.params import parse_params
from imdb_sentiment.training.fit import compiled_model, strategy_for
heads, block, length, steps = (int(v) for v in sys.argv[1:5])
raw = {**yaml.safe_load(open(sys.argv[5])), "pooling": "attention", "num_heads": heads, "attention_block_size": block}
params = parse_params(raw)
rng = np.random.default_rng(0)
x = rng.integers(2, params.max_features, size=(params.batch_size, length)).astype(np.int32)
y = rng.integers(0, 2, size=(params.batch_size, 1)).astype(np.float32)
model = compiled_model(params, params.max_features, strategy_for("none"), x)
times = []
for step in range(steps + 2):
    start = time.perf_counter()
    model.train_on_batch(x, y)
    times.append(time.perf_counter() - start)
print(json.dumps({"ms": 1000 * float(np.median(times[2:])),
                  "mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def cell(heads: int, block: int, length: int, steps: int) -> dict:
    result = subprocess.run([sys.executable, "-c", CELL, str(heads), str(block), str(length), str(steps),
                             str(PROJECT / "params.yaml")], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"attention_heads: the cell {heads} heads, block {block} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=800, help="tokens a review (default 800)")
    parser.add_argument("--block", type=int, default=64, help="keys a block in the blocked form (default 64)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps a cell (default 6)")
    args = parser.parse_args()
    rows = {}
    for heads in (1, 2, 4, 8):
        rows[heads] = {form: cell(heads, block, args.length, args.steps)
                       for form, block in (("explicit", 0), ("blocked", args.block))}
        explicit, blocked = rows[heads]["explicit"], rows[heads]["blocked"]
        print(f"{heads} heads: explicit {explicit['ms']:.0f} ms/step, {explicit['mib']:.0f} MiB; "
              f"blocked ({args.block}) {blocked['ms']:.0f} ms/step, {blocked['mib']:.0f} MiB", flush=True)
    print(f"\n| heads | explicit: ms/step | peak MiB | x 1 head | blocked {args.block}: ms/step | peak MiB | x 1 head |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for heads, forms in rows.items():
        cells = []
        for form in ("explicit", "blocked"):
            ms, mib = forms[form]["ms"], forms[form]["mib"]
            cells += [f"{ms:.0f}", f"{mib:.0f}", f"{ms / rows[1][form]['ms']:.2f} / {mib / rows[1][form]['mib']:.2f}"]
        print(f"| {heads} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
