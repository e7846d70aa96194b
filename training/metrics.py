"""Training metrics: one JSON object per line (`metrics.jsonl`) and a PNG of the curves."""

from __future__ import annotations

import json
from pathlib import Path


class MetricsLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def truncate_after(self, step: int) -> None:
        """After a resume, forget records written past the checkpoint so curves have no duplicates."""
        kept = [r for r in self.read() if r.get("step", 0) <= step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")


def plot_curves(records: list[dict], path: Path, title: str = "training") -> None:
    """Training loss, validation loss and validation BLEU against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("kind") == "train"]
    valid = [r for r in records if r.get("kind") == "valid"]
    fig, (ax_loss, ax_bleu) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", alpha=0.7)
    if valid:
        ax_loss.plot([r["step"] for r in valid], [r["loss"] for r in valid], "o-", label="valid loss")
        ax_bleu.plot([r["step"] for r in valid], [r["bleu"] for r in valid], "o-", color="tab:green")
    ax_loss.set(xlabel="step", ylabel="cross-entropy (nats/token)", title=f"{title}: loss")
    ax_loss.legend()
    ax_bleu.set(xlabel="step", ylabel="BLEU", title=f"{title}: validation BLEU")
    ax_bleu.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
