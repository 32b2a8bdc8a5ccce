"""Your own images: read images and masks from folders or multi-page TIFF stacks, paired and checked.

    data = load_folder("data/images", "data/masks")          # PNG, TIFF (8/16-bit, stacks), JPEG, BMP
    data = load_folder("train-volume.tif", "train-labels.tif", foreground="black")   # the ISBI 2012 stacks
    data.images[i]: (H, W, C) float32 in [0, 1];  data.masks[i]: (H, W) uint8 class indices;  data.names[i]

Images and masks are paired by file name (the stem: ``cell_01.png`` with ``cell_01.png`` or ``cell_01.tif``)
or, for two TIFF stacks, slice by slice. Masks may be

- binary: 0/1, 0/255 or boolean (foreground = 1), with ``foreground="black"`` when the label convention is
  inverted (ISBI 2012 labels are 255 = cell interior, 0 = membrane, and the paper predicts the membranes);
- class indices 0..K-1 for K classes (``n_classes=K``), in a grey or palette (mode "P") PNG, whose palette
  indices are the classes.

Every problem names the file and the fix: an image without a mask, sizes that differ, a JPEG mask (lossy
compression turns two values into dozens), an empty folder, a mask with values the class count does not
allow, a colour image for a grey model.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .optional import require

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
STACK_EXTENSIONS = (".tif", ".tiff")
LOSSY_EXTENSIONS = (".jpg", ".jpeg")


@dataclass
class FolderData:
    """Images and masks read from files: lists, since the images may differ in size."""
    images: list                      # (H, W, C) float32 in [0, 1]
    masks: list | None                # (H, W) uint8 class indices, or None when no masks were given
    names: list                       # "cell_01.png" or "train-volume.tif[3]"
    n_classes: int = 2
    notes: list = field(default_factory=list)     # what was inferred (bit depth, inverted labels, ...)

    def __len__(self):
        return len(self.images)

    def arrays(self):
        """(images, masks) as (N, H, W, C) and (N, H, W, 1) arrays, when every image has the same size."""
        sizes = {im.shape for im in self.images}
        if len(sizes) != 1:
            raise ValueError(f"the images differ in size ({sorted(sizes)[:3]}...): train on random crops "
                             "(training.fit crops them to the model's tile) or resize them first")
        x = np.stack(self.images)
        return x, None if self.masks is None else np.stack(self.masks)[..., None]


def _pil():
    return require("PIL.Image", "reading image files")


def _files(path) -> list[Path]:
    """The image files of a folder (sorted by name), or the one file given."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{os.fspath(path)!r} does not exist; give a folder of images or an image file")
    if p.is_file():
        return [p]
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        others = sorted(f.name for f in p.iterdir())[:5]
        raise ValueError(f"no images in {os.fspath(path)!r} (looked for {', '.join(IMAGE_EXTENSIONS)}; "
                         f"found {others or 'nothing'})")
    return files


def read_pages(path) -> list[tuple[str, np.ndarray, str]]:
    """Every page of an image file as (name, raw array, Pillow mode): one page for a PNG, all of a TIFF stack.

    Raw means as stored: uint8, uint16, bool, int32 or float32, (H, W) or (H, W, 3/4).
    """
    Image = _pil()
    path = Path(path)
    pages = []
    try:
        with Image.open(path) as im:
            n = getattr(im, "n_frames", 1)
            for k in range(n):
                im.seek(k)
                mode = im.mode
                a = np.array(im.convert("RGB") if mode in ("CMYK", "YCbCr", "LAB", "HSV") else im)
                if mode == "1":
                    a = a.astype(bool)
                name = path.name if n == 1 else f"{path.name}[{k}]"
                pages.append((name, a, mode))
    except (OSError, SyntaxError, ValueError) as err:          # Pillow: truncated, not an image, bomb
        raise ValueError(f"cannot read {os.fspath(path)!r} as an image ({err}); is it a complete PNG/TIFF/"
                         "JPEG file?") from None
    return pages


def image_to_float(a, name: str) -> tuple[np.ndarray, str | None]:
    """Raw pixels -> float32 in [0, 1], and a note when the range was inferred.

    uint8 / 255. uint16: divided by the largest value of its bit depth (12-bit data in a 16-bit file, values
    up to 4095, is divided by 4095, not 65535, and the note says so). Floats must already lie in [0, 1].
    """
    if a.dtype == bool:
        return a.astype(np.float32), None
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255, None
    if np.issubdtype(a.dtype, np.integer):
        top = int(a.max()) if a.size else 0
        if top < 0 or int(a.min()) < 0:
            raise ValueError(f"{name}: negative pixel values; save the image as 8- or 16-bit unsigned")
        bits = max(8, int(np.ceil(np.log2(top + 1))))
        note = None if bits in (8, 16) else f"{name}: {bits}-bit data in a {a.dtype.itemsize * 8}-bit file, scaled by 1/{2 ** bits - 1}"
        return (a.astype(np.float64) / (2 ** bits - 1)).astype(np.float32), note
    a = a.astype(np.float32)
    if a.size and (not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1):
        raise ValueError(f"{name}: a floating-point image must hold values in [0, 1] (found "
                         f"{float(np.nanmin(a)):.3g}..{float(np.nanmax(a)):.3g}); rescale it first")
    return a, None


def to_channels(a, channels: int, name: str, grayscale: bool = False) -> np.ndarray:
    """(H, W) or (H, W, 3/4) float -> (H, W, channels). RGB for a grey model is refused unless grayscale."""
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] == 4:                                          # RGBA: the alpha channel is not data
        a = a[..., :3]
    c = a.shape[-1]
    if c == channels:
        return a
    if channels == 1 and c == 3:
        if grayscale:
            return (a @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]   # ITU-R 601, as Pillow's "L"
        raise ValueError(f"{name} is a colour image but the model takes 1 channel; convert to grey "
                         "(grayscale=True / --grayscale) or build the model with input channels 3")
    if channels == 3 and c == 1:
        raise ValueError(f"{name} is a grey image but the model takes 3 channels; build the model with "
                         "1 input channel")
    raise ValueError(f"{name} has {c} channels but the model takes {channels}")


def mask_to_classes(a, name: str, n_classes: int = 2, foreground: str = "white") -> np.ndarray:
    """Raw mask pixels -> (H, W) uint8 class indices in 0..n_classes-1.

    Binary masks (n_classes=2): bool, {0, 1} or {0, 255} (also a palette/grey PNG with those two values);
    ``foreground="black"`` swaps the two. Multi-class: class indices 0..n_classes-1 as stored.
    """
    if foreground not in ("white", "black"):
        raise ValueError(f"foreground must be 'white' (the mask's bright pixels are the object) or 'black' "
                         f"(the dark ones, as in the ISBI 2012 labels), got {foreground!r}")
    if a.ndim == 3:
        if a.shape[-1] in (3, 4) and np.all(a[..., :3] == a[..., :1]):
            a = a[..., 0]                                         # a grey mask saved as RGB
        else:
            raise ValueError(f"{name}: a colour mask; save masks as grey or palette PNGs whose values are "
                             "the class indices (0, 1, ... or 0/255 for a binary mask)")
    if not (a.dtype == bool or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name}: mask values must be integers (class indices), got {a.dtype}")
    a = a.astype(np.int64)
    values = np.unique(a)
    if n_classes == 2 and set(values.tolist()) <= {0, 255}:
        a = a // 255
    elif values.min() < 0 or values.max() >= n_classes:
        shown = ", ".join(str(v) for v in values[:8]) + (" ..." if len(values) > 8 else "")
        if set(values.tolist()) <= {0, 255}:
            hint = "these are a binary mask's values (0/255): use n_classes=2 (--classes 2)"
        elif len(values) > n_classes + 2:
            hint = ("a mask with many values is usually a resized or lossy (JPEG) copy: threshold it "
                    "(mask > 127) and save it as PNG")
        else:
            hint = f"pass n_classes={int(values.max()) + 1} (--classes) if these are class indices"
        raise ValueError(f"{name}: mask values {{{shown}}} do not fit {n_classes} classes "
                         f"(expected 0..{n_classes - 1}{', or 0/255' if n_classes == 2 else ''}); {hint}")
    if foreground == "black":
        if n_classes != 2:
            raise ValueError("foreground='black' inverts a binary mask; it does not apply to "
                             f"{n_classes} classes")
        a = 1 - a
    return a.astype(np.uint8)


def _pages_of(path):
    return [(name, a, mode) for f in _files(path) for name, a, mode in read_pages(f)]


def load_folder(images, masks=None, channels: int = 1, n_classes: int = 2, foreground: str = "white",
                grayscale: bool = False) -> FolderData:
    """Read images (a folder, an image file or a TIFF stack) and their masks, paired and checked.

    images, masks: paths. channels: the model's input channels. n_classes: 2 for binary masks, K for class
    indices 0..K-1. foreground: "white" or "black" (binary masks: which value is the object). grayscale:
    convert colour images to grey for a 1-channel model instead of refusing them.
    """
    if int(n_classes) < 2:
        raise ValueError(f"n_classes must be at least 2 (background and one object class), got {n_classes}")
    notes = []
    image_pages = _pages_of(images)
    xs, names = [], []
    for name, raw, _ in image_pages:
        x, note = image_to_float(raw, name)
        notes += [note] if note else []
        xs.append(to_channels(x, channels, name, grayscale))
        names.append(name)
    if masks is None:
        return FolderData(xs, None, names, int(n_classes), notes)

    mask_files = _files(masks)
    lossy = [f.name for f in mask_files if f.suffix.lower() in LOSSY_EXTENSIONS]
    if lossy:
        raise ValueError(f"{lossy[0]} is a JPEG mask: JPEG's lossy compression turns a mask's two values into "
                         "dozens near every edge. Save masks as PNG (or TIFF); to rescue a JPEG mask, threshold "
                         "it (mask > 127) before saving")
    stacked = len(image_pages) > 1 and Path(images).is_file()
    if stacked:                                                   # a TIFF stack: pair slice by slice
        mask_pages = _pages_of(masks)
        if len(mask_pages) != len(image_pages):
            raise ValueError(f"{Path(images).name} has {len(image_pages)} slices but {Path(masks).name} has "
                             f"{len(mask_pages)}; the two stacks must match slice for slice")
        pairs = list(zip(range(len(xs)), mask_pages))
    else:
        by_stem = {}
        for f in mask_files:
            if f.stem in by_stem:
                raise ValueError(f"two masks for {f.stem!r}: {by_stem[f.stem].name} and {f.name}; keep one")
            by_stem[f.stem] = f
        pairs = []
        for i, name in enumerate(names):
            stem = Path(name.split("[")[0]).stem
            if stem not in by_stem:
                raise ValueError(f"image {name} has no mask in {os.fspath(masks)!r} (masks are paired by file "
                                 f"name: expected {stem}.png or {stem}.tif)")
            pages = read_pages(by_stem[stem])
            if len(pages) != 1:
                raise ValueError(f"{by_stem[stem].name} has {len(pages)} pages; a mask for one image has one")
            pairs.append((i, pages[0]))
        extra = sorted(set(by_stem) - {Path(n.split("[")[0]).stem for n in names})
        if extra:
            notes.append(f"{len(extra)} mask(s) without an image ignored, e.g. {by_stem[extra[0]].name}")
    ys = []
    for i, (mname, raw, _) in pairs:
        y = mask_to_classes(raw, mname, int(n_classes), foreground)
        if y.shape != xs[i].shape[:2]:
            raise ValueError(f"image {names[i]} is {xs[i].shape[0]}x{xs[i].shape[1]} but its mask {mname} is "
                             f"{y.shape[0]}x{y.shape[1]}; they must be the same size")
        ys.append(y)
    if foreground == "black":
        notes.append("labels inverted: the masks' dark pixels are the foreground class")
    return FolderData(xs, ys, names, int(n_classes), notes)
