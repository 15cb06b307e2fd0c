"""A small folder of ant and bee pictures, drawn offline, and the Dataset that reads it (notebook 05).

The classic beginner's example trains on a folder of ant and bee photos laid out as
``train/ants/*.jpg``, ``train/bees/*.jpg``, ``val/ants/...``, ``val/bees/...``, the label being
the folder's name. The course downloads nothing, so it draws its own pictures:

- :func:`draw_insect`: one picture, an ant or a bee drawn procedurally on a textured background.
  The backgrounds (soil, sand, grass, petals, stone) are drawn from one set shared by both
  classes and chosen independently of the class: the class is in the insect, not around it.
- :func:`make_insect_folder`: the whole folder, PNG files, the same bytes for the same seed.
- :class:`InsectFolder`: the Dataset the videos build (``MyData``): one label folder,
  item i is ``(picture, label)``; ``ants + bees`` gives one dataset of both.
- :func:`to_chw_float`: an (H, W, C) uint8 picture -> a (C, H, W) float32 tensor in [0, 1],
  what ``torchvision.transforms.ToTensor`` does for 8-bit RGB pictures (the course does not
  need torchvision).

Everything here lives in a module, not a notebook, on purpose: DataLoader workers started by
``spawn`` (Windows, macOS) or ``forkserver`` (Linux from Python 3.14) import the dataset's class
and the transform by their module path, and what a notebook defines in ``__main__`` cannot be
found there.
"""

from __future__ import annotations

import math
import numbers
import os
import pathlib

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from .. import _checks

__all__ = ["KINDS", "BACKGROUNDS", "IMAGE_SUFFIXES", "draw_insect", "make_insect_folder", "InsectFolder",
           "to_chw_float"]

KINDS = ("ants", "bees")  # the folder names, and the labels 0 and 1 in this order
BACKGROUNDS = ("soil", "sand", "grass", "petals", "stone")  # shared by both kinds
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")  # what InsectFolder reads


# ---------------------------------------------------------------------------
# drawing helpers: shapes in the insect's own frame, mapped onto the picture
# ---------------------------------------------------------------------------

def _ellipse(cx, cy, rx, ry, n=24):
    """Points of an ellipse (centre cx, cy; radii rx, ry) in the insect's frame, as an (n, 2) array."""
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _band(cx, cy, rx, ry, y0, y1, n=8):
    """The part of an ellipse between heights y0 and y1 (a stripe across a bee's body), as points."""
    ys = np.linspace(max(y0, cy - ry), min(y1, cy + ry), n)
    half = rx * np.sqrt(np.clip(1.0 - ((ys - cy) / ry) ** 2, 0.0, 1.0))
    right = np.stack([cx + half, ys], axis=1)
    left = np.stack([cx - half, ys], axis=1)[::-1]
    return np.concatenate([right, left])


class _Frame:
    """Maps the insect's frame (length 1 from head to tail, head towards -y, centred on 0) to pixels.

    length: the insect's length in pixels; angle: its rotation in radians; centre: (x, y) in pixels.
    """

    def __init__(self, length, angle, centre):
        c, s = math.cos(angle), math.sin(angle)
        self.matrix = length * np.array([[c, -s], [s, c]])
        self.centre = np.asarray(centre, dtype=float)
        self.length = length

    def __call__(self, points):
        points = np.asarray(points, dtype=float).reshape(-1, 2)
        return [tuple(p) for p in points @ self.matrix.T + self.centre]

    def width(self, w):
        """A line width given as a fraction of the insect's length, in whole pixels (at least 1)."""
        return max(1, int(round(w * self.length)))


def _jitter(rng, colour, amount):
    """``colour`` (r, g, b) with each channel moved by up to ``amount``, kept in [0, 255]."""
    return tuple(int(v) for v in np.clip(np.asarray(colour) + rng.integers(-amount, amount + 1, 3), 0, 255))


def _legs(draw, frame, rng, colour, roots, spread, width):
    """Six legs, three per side: each a hip -> knee -> foot polyline from a point on the thorax.

    roots: three heights along the body; spread: how far a leg reaches sideways.
    """
    # front legs point forward, middle ones sideways, hind ones backward (as real insects stand)
    directions = ((-0.55, -0.35), (0.0, -0.05), (0.55, 0.4))
    for side in (-1.0, 1.0):
        for y, (knee_dy, foot_dy) in zip(roots, directions):
            wobble = rng.uniform(-0.04, 0.04, 2)
            hip = (side * 0.03, y)
            knee = (side * spread * 0.55, y + knee_dy * spread * 0.6 + wobble[0])
            foot = (side * spread * (1.0 + wobble[1]), y + foot_dy * spread * 1.3 + knee_dy * spread * 0.6)
            draw.line(frame([hip, knee, foot]), fill=colour, width=width, joint="curve")


def _draw_ant(draw, frame, rng):
    """A dark ant: head, thorax, a thin waist and a large abdomen in a row, six thin legs, two antennae."""
    base = (28, 20, 16) if rng.random() < 0.7 else (95, 38, 22)  # most ants black-brown, some red-brown
    body = _jitter(rng, base, 14)
    leg_width = frame.width(0.022)
    _legs(draw, frame, rng, body, roots=(-0.17, -0.12, -0.07), spread=0.3, width=leg_width)
    # two elbowed antennae: a long first segment out to the side, then bent forward
    for side in (-1.0, 1.0):
        elbow = (side * rng.uniform(0.12, 0.16), -0.46 + rng.uniform(-0.02, 0.02))
        tip = (side * rng.uniform(0.14, 0.22), -0.6 + rng.uniform(-0.03, 0.03))
        draw.line(frame([(side * 0.03, -0.4), elbow, tip]), fill=body, width=leg_width, joint="curve")
    draw.polygon(frame(_ellipse(0.0, 0.25, 0.12, 0.2)), fill=body)     # abdomen (gaster)
    draw.polygon(frame(_ellipse(0.0, 0.02, 0.035, 0.035)), fill=body)  # the waist (petiole)
    draw.polygon(frame(_ellipse(0.0, -0.12, 0.055, 0.11)), fill=body)  # thorax
    draw.polygon(frame(_ellipse(0.0, -0.33, 0.08, 0.085)), fill=body)  # head
    shine = tuple(min(255, v + 45) for v in body)                      # a glint on the shiny abdomen
    draw.polygon(frame(_ellipse(0.04, 0.18, 0.03, 0.06, n=12)), fill=shine)


def _draw_bee(draw, frame, rng):
    """A fat striped bee: dark legs, a yellow body with black stripes, a dark head, pale translucent wings."""
    yellow = _jitter(rng, (236, 186, 36), 20)
    black = _jitter(rng, (30, 24, 18), 10)
    fur = _jitter(rng, (120, 86, 36), 20)
    _legs(draw, frame, rng, black, roots=(-0.16, -0.1, -0.02), spread=0.26, width=frame.width(0.025))
    for side in (-1.0, 1.0):   # short antennae
        draw.line(frame([(side * 0.03, -0.4), (side * 0.1, -0.5), (side * 0.14, -0.55)]), fill=black,
                  width=frame.width(0.02), joint="curve")
    cx, cy, rx, ry = 0.0, 0.14, 0.2 + rng.uniform(-0.02, 0.03), 0.3
    draw.polygon(frame(_ellipse(cx, cy, rx, ry)), fill=yellow)                      # abdomen
    offset = rng.uniform(-0.02, 0.02)
    for y0 in (-0.02, 0.11, 0.24):                                                  # black stripes
        draw.polygon(frame(_band(cx, cy, rx, ry, y0 + offset, y0 + offset + 0.065)), fill=black)
    draw.polygon(frame(_band(cx, cy, rx, ry, 0.37 + offset, cy + ry)), fill=black)  # dark tail tip
    draw.polygon(frame(_ellipse(0.0, -0.17, 0.14, 0.12)), fill=fur)                 # furry thorax
    draw.polygon(frame(_ellipse(0.0, -0.33, 0.095, 0.08)), fill=black)              # head
    # two wings, pale and see-through, spread from the thorax over the body
    wing = (225, 238, 255, int(rng.integers(100, 150)))
    edge = (150, 160, 180, 220)
    spread = rng.uniform(0.55, 0.9)  # radians away from the body's axis: a V of two separate wings
    for side in (-1.0, 1.0):
        angle = -side * spread
        c, s = math.cos(angle), math.sin(angle)
        shape = _ellipse(0.0, 0.17, 0.07, 0.18) @ np.array([[c, s], [-s, c]]) + (side * 0.07, -0.17)
        draw.polygon(frame(shape), fill=wing, outline=edge)


_DRAWERS = {"ants": _draw_ant, "bees": _draw_bee}


# ---------------------------------------------------------------------------
# backgrounds: one shared set, chosen independently of the class
# ---------------------------------------------------------------------------

def _smooth_noise(rng, size, cells, channels=1):
    """Soft blotches: a (cells x cells) grid of random values blown up to (size, size, channels), in [0, 1]."""
    grid = (rng.random((cells, cells, channels)) * 255).astype(np.uint8)
    if channels == 1:
        image = Image.fromarray(grid[..., 0], "L")
    else:
        image = Image.fromarray(grid, "RGB")
    out = np.asarray(image.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0
    return out.reshape(size, size, channels)


def _background(rng, size):
    """A (size, size) RGB texture: soil, sand, grass, petals or stone, picked at random."""
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    if kind in ("soil", "sand", "stone"):
        base = {"soil": (110, 78, 50), "sand": (205, 180, 135), "stone": (130, 130, 128)}[kind]
        base = np.asarray(_jitter(rng, base, 25), dtype=np.float32)
        blotches = _smooth_noise(rng, size, int(rng.integers(4, 9))) - 0.5
        grain = rng.normal(0.0, 1.0, (size, size, 1)).astype(np.float32)
        pixels = base * (1.0 + 0.35 * blotches) + 12.0 * grain
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(6, 18))):  # pebbles and crumbs
            x, y = rng.uniform(0, size, 2)
            r = rng.uniform(0.01, 0.04) * size
            shade = tuple(int(v) for v in np.clip(base * rng.uniform(0.6, 1.3), 0, 255))
            draw.ellipse((x - r, y - r * rng.uniform(0.6, 1.0), x + r, y + r), fill=shade)
        return image
    if kind == "grass":
        base = np.asarray(_jitter(rng, (70, 120, 45), 25), dtype=np.float32)
        blotches = _smooth_noise(rng, size, 6) - 0.5
        image = Image.fromarray(np.clip(base * (1.0 + 0.4 * blotches), 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(image)
        lean = rng.uniform(-1.0, 1.0)
        for _ in range(int(rng.integers(25, 45))):  # blades of grass, mostly leaning the same way
            x, y = rng.uniform(0, size, 2)
            length = rng.uniform(0.2, 0.5) * size
            a = lean + rng.normal(0.0, 0.25)
            shade = tuple(int(v) for v in np.clip(base * rng.uniform(0.6, 1.4), 0, 255))
            draw.line((x, y, x + length * math.sin(a), y - length * math.cos(a)), fill=shade,
                      width=max(1, int(size * rng.uniform(0.012, 0.03))))
        return image
    # petals: a pastel ground covered with large soft petals (yellow ones too, like a bee's colour)
    palette = ((245, 190, 205), (250, 245, 235), (245, 220, 90), (200, 170, 230), (250, 170, 120))
    ground = palette[int(rng.integers(len(palette)))]
    image = Image.new("RGB", (size, size), _jitter(rng, ground, 15))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(5, 10))):
        colour = _jitter(rng, palette[int(rng.integers(len(palette)))], 20)
        cx, cy = rng.uniform(0, size, 2)
        length, width = rng.uniform(0.25, 0.5) * size, rng.uniform(0.1, 0.2) * size
        a = rng.uniform(0, math.pi)
        points = _ellipse(0.0, 0.0, width, length, n=20)
        c, s = math.cos(a), math.sin(a)
        points = points @ np.array([[c, s], [-s, c]]) + (cx, cy)
        draw.polygon([tuple(p) for p in points], fill=colour,
                     outline=tuple(int(v * 0.85) for v in colour))
    return image


# ---------------------------------------------------------------------------
# one picture, the folder
# ---------------------------------------------------------------------------

def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, numbers.Integral):
        raise TypeError(f"size must be an int (pixels per side), got {type(size).__name__} {size!r}")
    if not 8 <= size <= 512:
        raise ValueError(f"size must be between 8 and 512 pixels, got {size}")
    return int(size)


def draw_insect(kind: str, rng: np.random.Generator, size: int = 32) -> Image.Image:
    """One RGB picture, ``size`` x ``size`` pixels, of an ant (``kind="ants"``) or a bee (``"bees"``).

    The insect has a random position, rotation (any angle), length (about half to four fifths of
    the picture) and colour jitter; the background is a random texture from :data:`BACKGROUNDS`,
    the same set for both kinds. It is drawn at 2-4 times the size and shrunk with
    ``Image.LANCZOS``, which smooths the edges. All randomness comes from ``rng``
    (``np.random.default_rng(seed)``): the same generator state gives the same picture.

    Returns a ``PIL.Image.Image`` of mode "RGB" and ``.size == (size, size)``; as an array,
    ``np.asarray(picture)`` is (size, size, 3) uint8.
    """
    if not isinstance(kind, str) or kind not in _DRAWERS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    size = _check_size(size)
    scale = max(2, min(4, 128 // size))  # draw big, shrink: smooth edges without anti-aliased drawing
    big = size * scale
    image = _background(rng, big)
    length = rng.uniform(0.5, 0.8) * big
    angle = rng.uniform(0.0, 2.0 * math.pi)
    margin = 0.3 * length  # keep most of the insect inside the picture
    centre = rng.uniform(margin, big - margin, 2)
    draw = ImageDraw.Draw(image, "RGBA")  # RGBA drawing blends translucent fills (the bee's wings)
    _DRAWERS[kind](draw, _Frame(length, angle, centre), rng)
    image = image.resize((size, size), Image.LANCZOS)
    # the whole picture a little lighter or darker, as the light of a photo would be
    pixels = np.asarray(image, dtype=np.float32) * rng.uniform(0.85, 1.15) + rng.uniform(-12, 12)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


_SPLIT_IDS = {"train": 0, "val": 1}


def make_insect_folder(root, per_class_train: int = 120, per_class_val: int = 40, size: int = 32,
                       seed: int = 0) -> pathlib.Path:
    """Write the pictures as ``root/{train,val}/{ants,bees}/NNN.png`` and return ``root`` as a Path.

    The layout is the one of the video series' ant and bee photos (``hymenoptera_data``): one
    folder per split, one sub-folder per class, the class being the folder's name. Picture
    ``NNN`` of a split and class is drawn from its own generator,
    ``np.random.default_rng([seed, split, class, NNN])``: the same call writes the same bytes,
    and a larger ``per_class_*`` adds pictures without changing the first ones.

    Refused before anything is written: a root that is not a str or Path or is an existing
    file, counts that are not positive ints (at most 10000), a size outside [8, 512], a seed that
    is not an int >= 0. Existing ``NNN.png`` files are overwritten; other files are left alone.
    """
    root = _checks.check_path("root", root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"root {root} is a file: name a folder (it is created if missing)")
    for name, count in (("per_class_train", per_class_train), ("per_class_val", per_class_val)):
        _checks.check_positive_int(name, count)
        if count > 10_000:
            raise ValueError(f"{name} must be at most 10000, got {count}")
    size = _check_size(size)
    _checks.check_int("seed", seed)
    if seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed}")
    for split, count in (("train", per_class_train), ("val", per_class_val)):
        for label, kind in enumerate(KINDS):
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                rng = np.random.default_rng([int(seed), _SPLIT_IDS[split], label, i])
                draw_insect(kind, rng, size).save(folder / f"{i:03d}.png", format="PNG")
    return root


# ---------------------------------------------------------------------------
# the Dataset of the videos, and the ToTensor step
# ---------------------------------------------------------------------------

class InsectFolder(Dataset):
    """The pictures of one label folder: ``root_dir/label_dir/*.png``; item i is ``(picture, label)``.

    The Dataset the videos build (``MyData``)::

        ants_dataset = InsectFolder("insects/train", "ants")
        bees_dataset = InsectFolder("insects/train", "bees")
        train_dataset = ants_dataset + bees_dataset     # a torch ConcatDataset of both

    root_dir, label_dir: str or Path; ``self.path = os.path.join(root_dir, label_dir)``.
    label: what every item carries as its label; by default ``label_dir`` itself (the string
        "ants", as in the videos); pass an int (ants 0, bees 1) to train on it.
    transform: optional function applied to each PIL picture, e.g. :func:`to_chw_float`.
    self.img_path: the image files' names, sorted (only files ending in one of
        :data:`IMAGE_SUFFIXES`: a stray ``.DS_Store`` or ``Thumbs.db`` is skipped).

    ``self[i]`` opens file i with PIL, ``.convert("RGB")`` (a grey or RGBA file becomes 3
    channels), applies ``transform`` and returns ``(picture, label)``: a PIL image of
    ``.size == (W, H)``, or what the transform returns (a (3, H, W) tensor for to_chw_float).
    """

    def __init__(self, root_dir, label_dir, label=None, transform=None):
        _checks.check_path("root_dir", root_dir)
        if not isinstance(label_dir, (str, os.PathLike)) or str(label_dir) == "":
            raise TypeError(f"label_dir must be a folder name (a str such as 'ants'), got {label_dir!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be a function picture -> anything, or None, "
                            f"got {type(transform).__name__}")
        self.root_dir, self.label_dir = root_dir, label_dir
        self.path = os.path.join(root_dir, label_dir)
        if not os.path.isdir(self.path):
            there = sorted(os.listdir(root_dir)) if os.path.isdir(root_dir) else None
            found = (f"{root_dir} holds {there}" if there is not None
                     else f"{root_dir} does not exist either (make it with make_insect_folder)")
            raise FileNotFoundError(f"no folder {self.path}: {found}")
        self.img_path = sorted(name for name in os.listdir(self.path)
                               if name.lower().endswith(IMAGE_SUFFIXES)
                               and os.path.isfile(os.path.join(self.path, name)))
        if not self.img_path:
            raise ValueError(f"{self.path} holds no image files (looked for {', '.join(IMAGE_SUFFIXES)})")
        self.label = str(label_dir) if label is None else label
        self.transform = transform

    def __getitem__(self, index):
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an int, got {type(index).__name__} {index!r}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} pictures in {self.path}")
        with Image.open(os.path.join(self.path, self.img_path[index])) as file:
            image = file.convert("RGB")  # reads the pixels now, so the file can be closed
        if self.transform is not None:
            image = self.transform(image)
        return image, self.label

    def __len__(self) -> int:
        return len(self.img_path)

    def __repr__(self) -> str:
        return f"InsectFolder({self.path!r}, {len(self)} pictures, label={self.label!r})"


def to_chw_float(image) -> torch.Tensor:
    """A picture -> a float32 tensor (C, H, W) with values in [0, 1].

    image: a PIL image (converted to RGB if it is not RGB or L) or an (H, W, C) uint8 numpy
        array. Returns ``torch.from_numpy(array).permute(2, 0, 1).float() / 255``: channels
        first, as ``nn.Conv2d`` wants, each 8-bit value divided by 255. This is what
        ``torchvision.transforms.ToTensor()`` does for 8-bit RGB pictures. A module-level
        function, so a DataLoader worker started by spawn can import it.
    """
    if isinstance(image, Image.Image):
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        array = np.asarray(image)
        if array.ndim == 2:  # a grey picture: one channel
            array = array[:, :, None]
    elif isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            raise TypeError(f"image must be a uint8 array (values 0..255), got dtype {array.dtype}; a float picture "
                            "is probably converted already")
        if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape:
            raise ValueError(f"image must be an (H, W, C) array with C in 1, 3, 4 (channels last, as PIL and "
                             f"NumPy store pictures), got shape {array.shape}")
    else:
        raise TypeError(f"image must be a PIL image or an (H, W, C) uint8 numpy array, got {type(image).__name__}")
    # copy: np.asarray of a PIL image is read-only, and torch wants writable memory
    tensor = torch.from_numpy(np.array(array, copy=True))
    return tensor.permute(2, 0, 1).contiguous().float().div(255.0)
