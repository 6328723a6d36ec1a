"""What the pretrain stage's output layer costs: time per step of masked-word pretraining with the
softmax at the hidden positions only (the stage's model) and at every position (the first form,
a target weight of 0 where nothing is hidden), side by side in one process.

    python benchmarks/pretrain_step.py data/vectorized [--steps 10] [--rounds 3] [-S key=value ...]

The body is the one params.yaml shapes, with ``-S`` overrides (default: one encoder block and
learned positions, as in docs/experiments.md); the batches are the stage's: 128 training
reviews each, cut to their longest, masked as the stage masks them. The forms take turns on the
same batches, ``--rounds`` rounds of ``--steps`` steps each after two to warm up, and each
form's best round is reported.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_OVERRIDES = ["encoder_blocks=1", "position_embedding=learned", "pretrain_epochs=1", "pretrain_objective=masked_words",
                     "region_filters=0"]


def every_position_model(params, vocabulary_size: int):
    """The first form: the output layer over every position, its loss weighted by the mask."""
    import keras

    from imdb_sentiment.training.pretrain import body_model

    body = body_model(params, vocabulary_size)
    logits = keras.layers.Dense(min(params.pretrain_vocabulary, vocabulary_size), name="word_logits")(body.output)
    return keras.Model(body.input, logits)


def compiled(model, weighted: bool):
    import keras

    metric = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  **({"weighted_metrics": metric} if weighted else {"metrics": metric}))
    return model


def seconds_per_step(step, batches) -> float:
    start = time.perf_counter()
    for batch in batches:
        step(batch)
    return (time.perf_counter() - start) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vectorized", type=Path, help="folder written by the vectorize stage")
    parser.add_argument("--steps", type=int, default=10, help="timed steps a round (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds each form (default 3)")
    parser.add_argument("-S", dest="overrides", action="append", default=[], help="key=value over params.yaml")
    args = parser.parse_args()

    from imdb_sentiment import cli

    cli.quiet_tensorflow()
    import numpy as np
    import yaml

    from imdb_sentiment.features.vectorized import load_split, load_vocabulary
    from imdb_sentiment.params import parse_params
    from imdb_sentiment.training.fit import set_seed
    from imdb_sentiment.training.memory import PRETRAIN_BATCH
    from imdb_sentiment.training.pretrain import asked_only, masks, pretraining_model

    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for override in DEFAULT_OVERRIDES + args.overrides:
        key, value = override.split("=", 1)
        raw[key] = yaml.safe_load(value)
    params = parse_params(raw)
    x = load_split(args.vectorized, "train")[0][:PRETRAIN_BATCH * (args.steps + 2)]
    vocabulary_size = len(load_vocabulary(args.vectorized))
    masked_batches = list(masks(x, params))
    set_seed(params.seed)
    hidden = compiled(pretraining_model(params, vocabulary_size), weighted=False)
    every = compiled(every_position_model(params, vocabulary_size), weighted=True)

    def hidden_step(batch):
        hidden.train_on_batch(*asked_only(*batch))

    def every_step(batch):
        every.train_on_batch(*batch)

    forms = {"at the hidden positions": hidden_step, "at every position": every_step}
    best = {name: float("inf") for name in forms}
    for step in forms.values():
        seconds_per_step(step, masked_batches[:2])  # warm up: trace and compile (each new length traces again:
        # the first round pays for it, the best round does not)
    for _ in range(args.rounds):
        for name, step in forms.items():
            best[name] = min(best[name], seconds_per_step(step, masked_batches[2:]))
    asked = np.mean([float(np.mean(np.asarray(weights))) for _, _, weights in masked_batches])
    print(f"pretrain step, batches of {PRETRAIN_BATCH} training reviews, {asked:.1%} of the positions asked for, "
          f"a {params.pretrain_vocabulary}-word output:")
    for name, seconds in best.items():
        print(f"  softmax {name}: {1000 * seconds:.0f} ms/step")
    print(f"  every position / hidden positions: {best['at every position'] / best['at the hidden positions']:.2f}x")


if __name__ == "__main__":
    main()
