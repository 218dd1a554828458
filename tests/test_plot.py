"""plot.py: the trace figure is written, has sensible dimensions, is not blank; matplotlib stays optional."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_explain import fitted, sentence
from unrolled.explain import explain
from unrolled.plot import PlotDependencyError, plot_trace

pytest.importorskip("matplotlib")


def read_png(path):
    from matplotlib.image import imread

    return imread(str(path))


@pytest.mark.parametrize("name, text", [
    ("gru-bi", "what a wonderful film , i love this but xyzzy so bad"),
    ("rnn", "i love this"),
    ("lstm", "so"),
])
def test_plot_writes_a_png_that_is_not_blank(tmp_path, name, text):
    path = plot_trace(explain(fitted(name), text), tmp_path / "trace.png")
    assert path.exists() and path.stat().st_size > 10_000
    pixels = read_png(path)
    height, width = pixels.shape[:2]
    assert 600 <= height <= 2000 and 800 <= width <= 2500 and pixels.shape[2] in (3, 4)
    assert pixels[..., :3].var() > 0.01  # a blank (single-colour) image has variance 0


def test_long_sentences_and_sampled_prefixes_plot_too(tmp_path):
    trace = explain(fitted("lstm-bi-2layer-mean"), sentence(300, seed=4), max_prefixes=20)
    assert trace.prefix_method == "sampled"
    pixels = read_png(plot_trace(trace, tmp_path / "long.png"))
    assert pixels.shape[1] <= 2500 and pixels[..., :3].var() > 0.01


def test_other_formats_follow_the_suffix(tmp_path):
    path = plot_trace(explain(fitted("rnn"), "so good"), tmp_path / "trace.svg")
    assert path.read_text(encoding="utf-8").lstrip().startswith("<?xml")


def test_missing_matplotlib_is_a_one_line_error(tmp_path, monkeypatch):
    trace = explain(fitted("rnn"), "so good")
    for module in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, module, None)  # makes `import matplotlib...` fail
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotDependencyError) as info:
        plot_trace(trace, tmp_path / "x.png")
    message = str(info.value)
    assert "\n" not in message and "pip install 'unrolled[plot]'" in message
    assert isinstance(info.value, ImportError) and isinstance(info.value, RuntimeError)
    assert not (tmp_path / "x.png").exists()


def test_plotting_never_uses_pyplot_or_a_display(tmp_path):
    code = (
        "import sys\n"
        "from tests.test_explain import fitted\n"
        "from unrolled.explain import explain\n"
        "from unrolled.plot import plot_trace\n"
        f"plot_trace(explain(fitted('rnn'), 'so good'), {str(tmp_path / 't.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), str(root)])
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "t.png").exists()


def test_plot_rejects_what_is_not_a_trace(tmp_path):
    with pytest.raises(TypeError, match="Trace"):
        plot_trace(np.zeros(3), tmp_path / "x.png")
