"""What the lab's widgets draw, as Rich text, tables and plots: the confusion matrix, the validation
images with their predictions, what the first layer learned or where the attention looks, the
norms, the doctor's hints and the two runs of a comparison side by side. Plain functions of the
figures, tested without the app."""

from __future__ import annotations

import math

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual_plotext import PlotextPlot

from nnsim.tui.images import HalfBlockTiles, half_blocks, heat, to_rgb
from nnsim.tui.live.doctor import Hint
from nnsim.tui.live.lab_figures import SMOOTHING, LabFigures
from nnsim.tui.live.lab_settings import differences

RUN_COLOURS = ("cyan", "magenta")
SHORT_PLOT = 12  # rows: a plot this short or shorter draws no title and no axis label
POINT = "•"  # a validation point: one cell wide in every terminal font (● is two in some)


def hints_text(hints: list[Hint]) -> Text:
    if not hints:
        return Text("Training doctor: nothing looks wrong.", style="green")
    text = Text("Training doctor\n", style="bold")
    for hint in hints:
        text.append(f"• {hint.problem}", style="yellow bold")
        text.append(f": {hint.why}.\n  fix: {hint.fix} · lesson {hint.lesson} explains it\n")
    return text


def thin(first: int, values: list[float], most: int = 400) -> tuple[list[float], list[float]]:
    """(steps, values) with at most `most` points: a braille plot shows no more, and drawing
    thousands of them would take the time the training needs. Each point kept is the mean of its run."""
    if len(values) <= most:
        return list(range(first, first + len(values))), values
    edges = np.linspace(0, len(values), most + 1).astype(int)
    means = np.add.reduceat(np.asarray(values, dtype=np.float64), edges[:-1]) / np.diff(edges)
    return (first + (edges[:-1] + edges[1:] - 1) / 2).tolist(), means.tolist()


def confusion_table(matrix: np.ndarray, names: list[str]) -> Group:
    table = Table(box=None, padding=(0, 0))
    top = max(int(matrix.max()), 1)
    width = len(str(top)) + 1
    table.add_column("", no_wrap=True)
    for name in names:
        table.add_column(name[: width - 1], justify="right", min_width=width, no_wrap=True)
    for i, name in enumerate(names):
        cells = []
        for j, count in enumerate(matrix[i]):
            level = int(40 + 180 * count / top)
            colour = f"rgb(40,{level},60)" if i == j else f"rgb({level},40,40)"
            cells.append(Text(f"{count:>{width}}", style=f"on {colour}" if count else "dim"))
        table.add_row(name[:6] + " ", *cells)
    return Group(Text("validation: true (rows) × predicted (columns)", style="italic"), table)


def sample_tiles(samples, names: list[str], width: int) -> Text:
    """The validation images, shrunk to about 10 pixels a side, with the class predicted and its p."""
    text = Text("validation images, predicted\n", style="bold")
    tiles = []
    for image, true, predicted, p in samples:
        image = np.asarray(image)
        image = image[0] if image.ndim == 3 and len(image) == 1 else image  # gray (H, W) or colour (3, H, W)
        stride = max(1, -(-image.shape[-1] // 10))
        tiles.append((half_blocks(to_rgb(image[..., ::stride, ::stride])).split("\n"), true, predicted, p))
    if not tiles:
        return text
    column = max(len(tiles[0][0][0]) + 1, 11)  # the image, or its label ("squ 100% ✓"), and a space
    per_row = max(1, width // column)
    for first in range(0, len(tiles), per_row):
        row = tiles[first : first + per_row]
        for line in range(len(row[0][0])):
            for tile, *_ in row:
                text.append_text(tile[line])
                text.append(" " * (column - len(tile[line])))
            text.append("\n")
        for _, true, predicted, p in row:
            label = f"{names[predicted][:3]} {p:.0%} {'✓' if predicted == true else '✗'}"
            text.append(label.ljust(column), style="green" if predicted == true else "red bold")
        text.append("\n")
    return text


def diverging(weights: np.ndarray) -> np.ndarray:
    """Weights as colours: blue below 0, red above, black at 0, scaled to the largest |w|."""
    scale = max(float(np.abs(weights).max()), 1e-12)
    v = np.clip(weights / scale, -1, 1)
    return np.stack([np.clip(v, 0, 1), 0.25 * np.abs(v), np.clip(-v, 0, 1)], axis=-1)


def inside_view(f: LabFigures, width: int) -> Group:
    """What the first layer looks for (CNN filters, MLP weights) or where the CLS token looks (ViT)."""
    inside = f.inside
    parts: list = [Text(f"inside the network at step {inside.step}", style="bold")]
    if inside.filters is not None:
        filters = inside.filters.mean(axis=1)  # over input channels
        kind = "filters" if filters.shape[-1] < 10 else "weights of the first neurons"
        parts.append(Text(f"first-layer {kind} (red > 0, blue < 0), as they change:"))
        zoom = max(1, 8 // filters.shape[-1])
        tiles = HalfBlockTiles([diverging(np.kron(w, np.ones((zoom, zoom)))) for w in filters[:16]], 1)
        tiles.per_row = min(max(1, width // (tiles.tile_width + 1)), 8)
        parts.append(tiles)
    if inside.attention is not None:
        parts.append(
            Text(
                "CLS attention of the last block on a validation image (mean over heads; "
                f"the largest share on one patch: {inside.attention_peak:.0%}):"
            )
        )
        parts.append(HalfBlockTiles([heat(inside.attention_image, inside.attention)], 1, gap=""))
        parts.append(Text("each head on its own, at half size (brighter: more attention):"))
        heads = [half_size_heat(inside.attention_image, head) for head in inside.attention_heads]
        parts += [HalfBlockTiles(heads, max(1, width // 16), gap="  "), Text("")]
    if inside.dead:
        parts.append(
            Text(
                "ReLU units never active on 64 validation images: "
                + ", ".join(f"{name} {share:.0%}" for name, share in inside.dead)
            )
        )
    return Group(*parts)


def half_size_heat(image: np.ndarray, values: np.ndarray) -> np.ndarray:
    """heat() of a patch grid's values over an image, both at half the image's size."""
    patch = image.shape[0] // values.shape[0]
    per_pixel = np.kron(values, np.ones((patch, patch)))[::2, ::2]
    return heat(image[: patch * values.shape[0] : 2, : patch * values.shape[1] : 2], per_pixel)


def norms_table(f: LabFigures) -> Table:
    table = Table(title="per-layer norms", title_justify="left", box=None, padding=(0, 1))
    table.add_column("parameter")
    table.add_column("‖θ‖", justify="right")
    table.add_column("‖∇θ L‖", justify="right")
    for name, weight, grad in f.inside.norms:
        table.add_row(name, f"{weight:.3f}", f"{grad:.4f}")
    return table


def summary_table(runs: list[LabFigures], configs: list, names: list[str] = ()) -> Table:
    table = Table(title="the two runs", title_justify="left", box=None, padding=(0, 1))
    table.add_column("")
    for figures in runs:
        table.add_column(figures.label, justify="right")
    if len(configs) == 2:
        for name, a, b in differences(*configs):
            table.add_row(name, a, b, style="bold")
    rows = [
        ("state", lambda f: f.reason or f.state),
        ("weights", lambda f: f"{f.parameters:,}"),
        ("steps", lambda f: str(f.step)),
        ("last validation accuracy", lambda f: f"{f.val_accuracies[-1]:.2%}" if f.val_accuracies else "–"),
        ("best validation accuracy", lambda f: f"{f.best_accuracy:.2%}" if f.best_accuracy is not None else "–"),
        ("last loss (moving average)", lambda f: f"{f.smoothed[-1]:.4f}" if f.smoothed else "–"),
        ("images/s", lambda f: f"{f.samples_per_s:,.0f}"),
        ("seconds", lambda f: f"{f.seconds:.1f}"),
    ]
    for name, value in rows + _recall_rows(runs, names):
        table.add_row(name, *(value(f) for f in runs))
    return table


def _recall_rows(runs: list[LabFigures], names: list[str]) -> list:
    """Recall (the share of a class's validation images predicted as that class) of the rarest
    class, and its mean over the classes: what a loss for rare classes is meant to raise."""
    confusion = runs[0].confusion
    if confusion is None or len(names) != len(confusion):
        return []
    counts = confusion.sum(axis=1)
    rare = int(np.argmin(counts))

    def recall(f: LabFigures, index: int) -> float:
        row = f.confusion[index]
        return row[index] / max(row.sum(), 1)

    def mean_recall(f: LabFigures) -> str:
        return f"{np.mean([recall(f, i) for i in range(len(f.confusion))]):.0%}" if f.confusion is not None else "–"

    return [
        (
            f"recall of {names[rare]} (rarest: {counts[rare]} images)",
            lambda f: f"{recall(f, rare):.0%}" if f.confusion is not None else "–",
        ),
        ("mean recall over the classes", mean_recall),
    ]


def clear_plot(plot: PlotextPlot):
    plt = plot.plt
    plt.clear_data()
    plt.clear_figure()
    return plt


def draw_curves(loss_plot: PlotextPlot, accuracy_plot: PlotextPlot, f: LabFigures, log_scale: bool) -> None:
    """The loss and accuracy of every step, their moving average and each epoch's validation."""
    for plot, raw, smooth, val, title in (
        (loss_plot, f.losses, f.smoothed, f.val_losses, "loss"),
        (accuracy_plot, f.accuracies, None, f.val_accuracies, "accuracy"),
    ):
        plt = clear_plot(plot)
        first = f.step - len(raw) + 1
        at = f.epochs_at[: len(val)]
        logged = log_scale and title == "loss" and raw and min(raw) > 0 and min(val, default=1) > 0
        if logged:  # drawn as log10 of the values, by us: plotext's own log scale logs again at each redraw
            raw, smooth, val = (np.log10(values).tolist() if values else values for values in (raw, smooth, val))
        if val:  # the validation line first, so that the training curves show over it
            plt.plot(at, val, color="orange", marker="braille")
        if raw:
            plt.plot(*thin(first, raw), color="gray", marker="braille", label=f"train {title}, each step")
        if smooth:
            plt.plot(*thin(first, smooth), color="cyan", marker="braille", label=f"moving average ({SMOOTHING})")
        if val:
            plt.scatter(at, val, color="orange", marker=POINT, label=f"validation {title}, each epoch")
        if raw:  # a margin on the right: the last validation point is drawn whole, not on the frame
            plt.xlim(first - 0.5, f.step + max(1.0, 0.03 * len(raw)))
        if logged:
            powers = range(math.floor(min(raw + val)), math.ceil(max(raw + val)) + 1)
            plt.yticks(list(powers), [f"{10.0**power:g}" for power in powers])
        if plot.size.height >= SHORT_PLOT:  # a short plot keeps its rows for the curves
            plt.title(title + (" (log scale: y toggles)" if logged else ""))
            plt.xlabel("step")
        plot.refresh()


def draw_compare(loss_plot: PlotextPlot, accuracy_plot: PlotextPlot, runs: list[LabFigures], configs: list) -> None:
    """A comparison's two runs, their smoothed loss and validation accuracy drawn together."""
    for plot, title in ((loss_plot, "loss (moving average)"), (accuracy_plot, "validation accuracy")):
        plt = clear_plot(plot)
        for figures, colour, config in zip(runs, RUN_COLOURS, configs, strict=False):
            label = f"{figures.label}: {config.model}, {config.loss}, {config.optimizer} {config.lr:g}"
            if title.startswith("loss") and figures.smoothed:
                first = figures.step - len(figures.smoothed) + 1
                plt.plot(*thin(first, figures.smoothed), color=colour, marker="braille", label=label)
            elif figures.val_accuracies:
                at = figures.epochs_at[: len(figures.val_accuracies)]
                plt.plot(at, figures.val_accuracies, color=colour, marker="braille")
                plt.scatter(at, figures.val_accuracies, color=colour, marker=POINT, label=label)
        last = max(figures.step for figures in runs)
        if last:
            plt.xlim(0.5, last + max(1.0, 0.03 * last))
        if plot.size.height >= SHORT_PLOT:
            plt.title(title)
            plt.xlabel("step")
        plot.refresh()
