"""What the widget tests read from a widget's PNG (a helper module for tests/test_widgets_*.py)."""

import io

import numpy as np
from PIL import Image


def weight_bar_is_shown(bar, png: bytes) -> bool:
    """``bar`` is a colour bar of attention weights (fixed scale 0..1, labelled "weight") and the
    picture shows it: dark at its top (weight 1), light at its bottom (weight 0)."""
    assert bar.vmin == 0 and bar.vmax == 1 and "weight" in bar.ax.get_ylabel()
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    box = bar.ax.get_window_extent()
    x, height = int((box.x0 + box.x1) / 2), pixels.shape[0]
    top, bottom = (pixels[height - int(box.y0 + f * (box.y1 - box.y0)), x].sum() for f in (0.95, 0.05))
    return top < bottom - 300
