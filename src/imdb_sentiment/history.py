"""The per-epoch training history as a CSV file (what `dvc plots` and the plots stage read)."""

from __future__ import annotations

COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def from_keras(history: dict[str, list[float]]) -> list[dict]:
    """Rows, one an epoch (counted from 1), from a Keras ``History.history`` mapping."""
    return [
        {"epoch": epoch + 1, **{key: float(history[key][epoch]) for key in COLUMNS[1:]}}
        for epoch in range(len(history["loss"]))
    ]


def to_csv(rows: list[dict]) -> str:
    lines = [",".join(COLUMNS)]
    lines += [",".join([str(row["epoch"])] + [f"{row[c]:.6g}" for c in COLUMNS[1:]]) for row in rows]
    return "\n".join(lines) + "\n"


def from_csv(text: str) -> list[dict]:
    header, *lines = text.strip().splitlines()
    columns = header.split(",")
    return [{c: (int(v) if c == "epoch" else float(v)) for c, v in zip(columns, line.split(","))} for line in lines]
