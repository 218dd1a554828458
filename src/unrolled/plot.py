"""Pictures of a :class:`unrolled.explain.Trace`, with matplotlib (an optional dependency:
``pip install 'unrolled[plot]'``).

:func:`plot_trace` draws one figure with three panels over the same time axis (one column per token):

1. the top layer's hidden state h_t as a heatmap, units × steps, diverging colours centred at 0
   (forward direction; the reverse one is in the trace's JSON);
2. P(class | tokens 1..t) for every class: the prediction if the sentence ended at step t;
3. ‖∂L/∂h_t‖ and ‖∂L/∂x_t‖ on a log scale: how much of the loss signal reaches each step.

:func:`attention_heatmap` draws a translation's attention weights: output tokens × source tokens.

The figure is rendered with the Agg backend into a file; no window is opened and pyplot's global state is
not touched.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from unrolled.explain import Trace

__all__ = ["PlotDependencyError", "attention_heatmap", "check_plot_path", "plot_forecast", "plot_trace"]

MAX_TICKS = 40  # token labels on the time axis at most; longer sentences get evenly spaced ones
MARKERS = 60  # points get markers when a curve has at most this many
TITLE_CHARS = 90  # the sentence in the title is cut to this many characters


class PlotDependencyError(ImportError, RuntimeError):
    """matplotlib is not installed (a RuntimeError too, so the command line reports it in one line)."""


def check_plot_path(path: str | Path, name: str | None = None) -> Path:
    """Refuse, before any work is done, a path no figure can be written to: a folder, a file in a folder
    that does not exist or cannot be written in, or a file type matplotlib does not write (checked when matplotlib is installed).
    ``name`` starts the message (default: the path)."""
    path = Path(path)
    name = name or str(path)
    if path.is_dir():
        raise ValueError(f"{name}: is a folder; give a file name such as {path / 'plot.png'}")
    if not path.parent.is_dir():
        raise ValueError(f"{name}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ValueError(f"{name}: cannot write in {path.parent} (permission denied)")
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        return path  # drawing will say what to install
    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    suffix = path.suffix.lower().removeprefix(".")
    if suffix and suffix not in formats:  # none: matplotlib writes a PNG and adds .png
        raise ValueError(f"{name}: .{suffix} is not an image format matplotlib writes (.{', .'.join(formats)})")
    return path


def plot_trace(trace: Trace, path: str | Path, *, dpi: int = 120) -> Path:
    """Draw ``trace`` into an image file (the format follows the suffix: .png, .svg, .pdf); returns the path."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import TwoSlopeNorm
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotDependencyError("plotting needs matplotlib: pip install 'unrolled[plot]'") from None
    if not isinstance(trace, Trace):
        raise TypeError(f"trace: expected an unrolled.explain.Trace, got {type(trace).__name__}")
    path = Path(path)

    t_len = len(trace.tokens)
    steps = np.arange(1, t_len + 1)
    labels = [tok + ("*" if unk else "") for tok, unk in zip(trace.tokens, trace.unknown)]
    width = min(18.0, max(8.0, 0.35 * min(t_len, MAX_TICKS) + 4.0))
    fig = Figure(figsize=(width, 9.0), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(3, 2, width_ratios=[50, 1], height_ratios=[1.2, 1, 1])
    ax_h = fig.add_subplot(grid[0, 0])
    ax_p = fig.add_subplot(grid[1, 0], sharex=ax_h)
    ax_g = fig.add_subplot(grid[2, 0], sharex=ax_h)

    # (1) hidden states: units × steps, 0 is white.
    h = trace.h[:, 0, :].astype(np.float64).T  # (H, T), forward direction
    limit = float(np.max(np.abs(h))) or 1.0
    image = ax_h.imshow(
        h, aspect="auto", cmap="RdBu_r", norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit),
        interpolation="nearest", extent=(0.5, t_len + 0.5, h.shape[0] - 0.5, -0.5),
    )
    fig.colorbar(image, cax=fig.add_subplot(grid[0, 1]), label="h value")
    direction = ", forward direction" if trace.model["bidirectional"] else ""
    ax_h.set_title(f"Hidden state h_t over time (top layer{direction})")
    ax_h.set_ylabel("hidden unit")

    # (2) the prediction if the sentence ended at each step.
    probs = trace.prefix_probabilities
    known = ~np.isnan(probs[:, 0])
    marker = "o" if known.sum() <= MARKERS else None
    for c, name in enumerate(trace.classes):
        style = {"linewidth": 2.5} if c == trace.predicted else {"linewidth": 1.5}
        ax_p.plot(steps[known], probs[known, c], marker=marker, markersize=4, label=f"P({name})", **style)
    ax_p.set_ylim(-0.03, 1.03)
    ax_p.axhline(0.5, color="0.75", linewidth=0.8, linestyle=":")
    ax_p.set_ylabel("probability")
    sampled = f" (at {int(known.sum())} evenly spaced steps)" if trace.prefix_method == "sampled" else ""
    ax_p.set_title(f"Prediction if the sentence ended at step t{sampled}")
    ax_p.legend(loc="best", fontsize="small", ncols=min(len(trace.classes), 4))
    ax_p.grid(alpha=0.3)

    # (3) gradient norms on a log scale (exact zeros, e.g. flushed underflow, are left out).
    for values, name in ((trace.grad_h[:, 0], "‖∂L/∂h_t‖"), (trace.grad_x, "‖∂L/∂x_t‖")):
        shown = np.where(values > 0, values, np.nan)
        ax_g.plot(steps, shown, marker="o" if t_len <= MARKERS else None, markersize=4, label=name)
    if np.any(trace.grad_h[:, 0] > 0) or np.any(trace.grad_x > 0):
        ax_g.set_yscale("log")
    ax_g.set_ylabel("gradient norm (log)")
    ax_g.set_xlabel("step t: token (* = unknown, read as <unk>)")
    ax_g.set_title(f"Gradient flow over time: {trace.gradient_summary}")
    ax_g.legend(loc="best", fontsize="small")
    ax_g.grid(alpha=0.3, which="both")

    ticks = steps if t_len <= MAX_TICKS else np.unique(np.linspace(1, t_len, MAX_TICKS).round().astype(int))
    tick_labels = [labels[t - 1] if t_len <= MAX_TICKS else f"{t}:{labels[t - 1]}" for t in ticks]
    ax_g.set_xticks(ticks, tick_labels, rotation=60, ha="right", fontsize="small")
    ax_g.set_xlim(0.5, t_len + 0.5)
    for ax in (ax_h, ax_p):
        ax.tick_params(labelbottom=False)

    sentence = trace.text if len(trace.text) <= TITLE_CHARS else trace.text[: TITLE_CHARS - 1] + "…"
    probability = trace.probabilities[trace.predicted]
    fig.suptitle(f"“{sentence}” → {trace.predicted_label} (P = {probability:.3f})", fontsize="large")
    fig.savefig(path)
    return path


def plot_forecast(
    path: str | Path,
    *,
    title: str,
    history: tuple[np.ndarray, np.ndarray],
    forecasts: dict[str, tuple[np.ndarray, np.ndarray]],
    actual: tuple[np.ndarray, np.ndarray] | None = None,
    dpi: int = 120,
) -> Path:
    """One chart: the history (x, y), the actual values of the forecast period if known, and each
    forecaster's curve (name -> (x, y)); x are dates (datetime64) or step indices."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotDependencyError("plotting needs matplotlib: pip install 'unrolled[plot]'") from None
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(history[0], history[1], color="black", linewidth=1.4, label="history")
    if actual is not None:
        ax.plot(actual[0], actual[1], color="black", linewidth=1.4, linestyle="--", label="actual")
    styles = {"rnn": dict(color="tab:red", linewidth=2.2)}
    for name, (x, y) in forecasts.items():
        ax.plot(x, y, label=name, **styles.get(name, dict(linewidth=1.2, alpha=0.85)))
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path


def attention_heatmap(weights: np.ndarray, source_tokens: list[str], output_tokens: list[str], path: str | Path,
                      *, title: str | None = None, dpi: int = 120) -> Path:
    """weights (T_out, S): row t is the attention of output step t over the source tokens (each row sums to 1);
    drawn as a heatmap with the source tokens along the top and the output tokens down the side."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotDependencyError("plotting needs matplotlib: pip install 'unrolled[plot]'") from None
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(output_tokens), len(source_tokens)):
        raise ValueError(f"weights: expected shape ({len(output_tokens)}, {len(source_tokens)}) (output tokens, "
                         f"source tokens), got {weights.shape}")
    fig = Figure(figsize=(max(4.0, 0.55 * len(source_tokens) + 2.0), max(3.0, 0.4 * len(output_tokens) + 1.5)),
                 layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source_tokens)), source_tokens, rotation=60, ha="left", fontsize=9)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(output_tokens)), output_tokens, fontsize=9)
    if title:
        ax.set_xlabel(title[:TITLE_CHARS], fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.04, label="attention weight")
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path


def speech_explanation_plot(explained, path: str | Path, *, title: str | None = None, dpi: int = 120) -> Path:
    """A speech recognizer's explanation (:class:`unrolled.models.speech.SpeechExplanation`) in three panels on
    one time axis: the input features, the per-frame posteriors of every output, and (ctc) the best alignment
    of the transcript, the symbol each frame emits."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotDependencyError("plotting needs matplotlib: pip install 'unrolled[plot]'") from None
    features = np.asarray(explained.features, dtype=np.float64)
    posteriors = np.asarray(explained.posteriors, dtype=np.float64)
    t_len = len(features)
    seconds = t_len * explained.frame_seconds
    rows = 3 if explained.alignment is not None else 2
    fig = Figure(figsize=(max(6.0, min(14.0, 0.05 * t_len + 4)), 2.4 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True)
    extent = (0.0, seconds, -0.5, features.shape[1] - 0.5)
    axes[0].imshow(features.T, origin="lower", aspect="auto", cmap="magma", extent=extent)
    axes[0].set_ylabel("feature")
    axes[0].set_title(f"{(title or '')[:TITLE_CHARS]}  →  {explained.transcript}  (p = {explained.probability:.3f})",
                      fontsize=10)
    times = (np.arange(t_len) + 0.5) * explained.frame_seconds
    for index, name in enumerate(explained.outputs):
        style = {"color": "0.7", "linestyle": ":"} if name == "<blank>" else {}
        axes[1].plot(times, posteriors[:, index], label=name, **style)
    axes[1].set_ylim(0, 1.02)
    axes[1].set_ylabel("posterior")
    axes[1].legend(ncol=min(12, len(explained.outputs)), fontsize=7, loc="upper right")
    if explained.alignment is not None:
        ax = axes[2]
        path_index = [explained.outputs.index(symbol) for symbol in explained.alignment]
        ax.step(times, path_index, where="mid", color="black")
        previous = None
        for t, symbol in enumerate(explained.alignment):
            if symbol != previous and symbol != "<blank>":
                ax.annotate(symbol, (times[t], path_index[t]), xytext=(0, 4), textcoords="offset points",
                            fontsize=9, ha="center")
            previous = symbol
        ax.set_yticks(range(len(explained.outputs)), explained.outputs, fontsize=7)
        ax.set_ylabel("best alignment")
    axes[-1].set_xlabel("time (s)")
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path
