"""Loss curves as PNG files (no screen needed)."""

from __future__ import annotations

from pathlib import Path

from aurore.text.french import format_count, format_number


def plot_losses(steps: list[dict], epochs: list[dict], path: Path,
                validation_label: str = "validation, La Mare au diable (par époque)") -> Path:
    """Training loss per step and validation loss per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    # A small figure with large type: on a phone, the page scales the image to ~360 px wide and the labels stay legible.
    with plt.rc_context({"font.size": 14, "legend.fontsize": 12}):
        figure, axis = plt.subplots(figsize=(6.4, 4.4))
        axis.plot([s["step"] for s in steps], [s["loss"] for s in steps], label="entraînement (par pas)", alpha=0.7)
        validation = [e for e in epochs if e.get("val_loss") is not None]
        if validation:
            axis.plot([e["step"] for e in validation], [e["val_loss"] for e in validation], "o-",
                      label=validation_label)
        axis.set_xlabel("pas")
        axis.set_ylabel("perte (entropie croisée)")
        # Numbers as French writes them, like the rest of the page: 2,5 and 1 500.
        axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: format_count(value)))
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: format_number(value)))
        axis.legend()
        axis.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
    return path
