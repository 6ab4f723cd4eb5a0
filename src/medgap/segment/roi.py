"""The region of interest for classification (``medgap finetune --roi``) and quality scoring (``medgap
quality/study --roi``): a mask per image, from a folder of masks or predicted by a ``segment train`` run, and
what is kept of the frame.

Modes (:func:`apply_roi`):

- ``crop`` (the default): the frame cropped to the mask's bounding box; the pixels inside the box but outside
  the mask stay as they are. For quality metrics this is the default because BRISQUE's and NIQE's statistics
  come from mean-subtracted contrast-normalised (MSCN) coefficients over 7x7 Gaussian windows: a frame whose
  outside is set to a constant gains an artificial edge along the whole mask outline, and a constant area whose
  MSCN coefficients are exactly 0 (BRISQUE's GGD fit then sees a spike at 0); both change the score for
  reasons that have nothing to do with the organ.
- ``mask``: the whole frame with the outside set to its lowest value (black once displayed), then cropped to
  the box as well: only the region's pixels carry image content. This is the masked variant for
  classification (the network sees the lungs and nothing of the mediastinum or the labels around them); for
  quality it is documented and available, with the caveat above (docs/segmentation.md).

Masks are found by image name (:class:`MaskFolder`): a mask file with the image's file name (the shared lung
masks keep their image's name, ``.jpg`` included), else its name without suffix (``x.jpg`` -> ``x.png``, as
``medgap segment predict`` names them, or ``x_jpg.png`` when two inputs share a stem); several candidates are
told apart by the image's parent folders (``cxr/x.jpg`` -> ``masks/lungs/cxr/x.jpg``); when the mask folder has a
folder named as the image's parent folder, only masks inside such a folder count (``data/b/x.png`` never gets
``masks/a/x.png``, even when it is the only ``x.png``). An all-zero mask means
"not annotated" and counts as no mask. A mask must have its frame's size.

A ``segment train`` run as the source predicts **cross-fitted** masks (:mod:`medgap.segment.crossfit`): an image
the run trained on is predicted by the fold model that held it out, so no mask is an in-sample segmentation;
predicted masks keep their ``keep_largest`` largest components (2 by default); each mask used is recorded
(:attr:`RoiSource.records`; ``finetune`` writes them to ``roi_masks.csv`` in its run)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medgap.segment.errors import SegmentError
from medgap.segment.masks import DEFAULT_KEEP_LARGEST, DEFAULT_THRESHOLD, is_annotated, read_mask, region

ROI_MODES = ("crop", "mask")


class NoMask(SegmentError):
    """No usable mask for an image (none found, or only a not-annotated all-zero one)."""


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1), end-exclusive, of the True pixels; SegmentError for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise NoMask("the mask is empty: no region to keep")
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def apply_roi(pixels: np.ndarray, mask: np.ndarray, mode: str = "crop") -> np.ndarray:
    """``pixels`` (HxW or HxWxC) kept to the region ``mask`` (boolean HxW): ``crop`` to its bounding box, or
    ``mask``: outside set to the frame's lowest value, then cropped to the box."""
    if mode not in ROI_MODES:
        raise SegmentError(f"--roi-mode {mode!r}: crop or mask")
    mask = np.asarray(mask, bool)
    if mask.shape != pixels.shape[:2]:
        raise SegmentError(f"mask {mask.shape[1]}x{mask.shape[0]} for a frame of {pixels.shape[1]}x{pixels.shape[0]}:"
                           " a mask must have its image's size")
    r0, r1, c0, c1 = bounding_box(mask)
    out = np.array(pixels, copy=True)
    if mode == "mask":
        finite = out[np.isfinite(out)] if out.dtype.kind == "f" else out
        out[~mask] = finite.min() if finite.size else 0
    return np.ascontiguousarray(out[r0:r1, c0:c1])


def _strip_suffix(name: str) -> str:
    from medgap.io.readers import suffix_of

    s = suffix_of(name)
    return name[: len(name) - len(s)] if s else name


@dataclass
class MaskFolder:
    """Masks under ``root`` (recursive), found by image name (see the module's note)."""

    root: Path
    by_name: dict[str, list[Path]] = field(default_factory=dict)
    folders: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise SegmentError(f"--roi {self.root}: no such folder (give a folder of masks or a segment-train run)")
        for f in sorted(p for p in self.root.rglob("*") if p.is_file() and not p.name.startswith(".")):
            if f.suffix.lower() in (".csv", ".json", ".txt", ".md"):
                continue
            self.folders.update(part.lower() for part in f.relative_to(self.root).parent.parts)
            self.by_name.setdefault(f.name.lower(), []).append(f)
            self.by_name.setdefault("stem:" + _strip_suffix(f.name).lower(), []).append(f)

    def find(self, image: str | Path, frame: int | None = None) -> Path | None:
        image = Path(image)
        stem = _strip_suffix(image.name).lower()
        keys = ([f"stem:{stem}_frame{frame:04d}"] if frame is not None else []) + [
            image.name.lower(), "stem:" + stem, "stem:" + stem + "_" + image.name[len(stem) + 1:].lower().replace(".", "_")]
        parent = image.parent.name.lower()
        for key in keys:
            found = self.by_name.get(key, [])
            if parent in self.folders:  # the masks mirror the images' folders: only a mask in the image's folder
                found = [f for f in found if parent in (x.lower() for x in f.relative_to(self.root).parent.parts)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                return _closest(image, found)
        return None


def _closest(image: Path, candidates: list[Path]) -> Path:
    """The candidate whose parent folders match the image's the longest way up."""
    def shared(c: Path) -> int:
        n = 0
        for a, b in zip(reversed(image.resolve().parent.parts), reversed(c.parent.parts)):
            if a.lower() != b.lower():
                break
            n += 1
        return n

    scores = [shared(c) for c in candidates]
    best = max(scores)
    if scores.count(best) > 1:
        tied = [str(c) for c, s in zip(candidates, scores) if s == best]
        raise SegmentError(f"{image}: several masks fit it equally ({', '.join(tied[:3])}); keep one mask per image "
                           "name in the --roi folder")
    return candidates[scores.index(best)]


@dataclass
class RoiSource:
    """Where each image's region comes from (``spec``: a folder of masks, or a ``segment train`` run whose models
    predict cross-fitted masks, :mod:`medgap.segment.crossfit`), and what is kept (``mode``). Picklable (a run's
    models load lazily in each process). ``str()`` is its stable key (in a scores table's resume key).
    Calling it is :meth:`apply`; :attr:`records`: one dict per mask used (image, frame, where it came from)."""

    spec: Path
    mode: str = "crop"
    threshold: float = DEFAULT_THRESHOLD
    device: str = "cpu"
    keep_largest: int = DEFAULT_KEEP_LARGEST
    records: list = field(default_factory=list, init=False, repr=False, compare=False)
    _folder: MaskFolder | None = field(default=None, init=False, repr=False)
    _segmenter: object = field(default=None, init=False, repr=False)
    _lock: object = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.spec = Path(self.spec)
        if self.mode not in ROI_MODES:
            raise SegmentError(f"--roi-mode {self.mode!r}: crop or mask")
        if not self.spec.exists():
            raise SegmentError(f"--roi {self.spec}: no such folder (a folder of masks named after the images, or a "
                               "segment-train run directory)")
        if not self.is_run:
            self._folder = MaskFolder(self.spec)
        self._lock = threading.Lock()

    @property
    def is_run(self) -> bool:
        from medgap.segment.train import PREPROCESSING_FILE

        return (self.spec / PREPROCESSING_FILE).is_file()

    def __str__(self) -> str:
        if self.is_run:  # cross-fitted, post-processed masks: a key of their own (tables of older masks rescore)
            return f"run:{self.spec.resolve()}|{self.mode}|{self.threshold:g}|crossfit|keep{self.keep_largest}"
        return f"masks:{self.spec.resolve()}|{self.mode}|{self.threshold:g}"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_segmenter"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def mask(self, image: str | Path, frame) -> np.ndarray:
        """The boolean region of ``frame`` (a :class:`medgap.io.Frame` of ``image``); :class:`NoMask` when there
        is none."""
        index = getattr(frame, "frame", None)
        if self.is_run:
            with self._lock:
                if self._segmenter is None:
                    from medgap.segment.crossfit import CrossFitSegmenter

                    self._segmenter = CrossFitSegmenter(self.spec, self.device, self.keep_largest)
                found, record = self._segmenter.predict(image, frame)
            self.records.append(record)
            if not found.any():
                raise NoMask(f"{image}: the segmentation run {self.spec} finds no region in it ({record['model']})")
            return found
        path = self._folder.find(image, index)
        if path is None:
            self.records.append({"image": str(image), "frame": index, "mask": "", "error": "no mask"})
            raise NoMask(self._no_mask_message(Path(image), index))
        raw = read_mask(path)
        self.records.append({"image": str(image), "frame": index, "mask": str(path)})
        if not is_annotated(raw):
            raise NoMask(f"{image}: its mask {path} is 0 everywhere (not annotated); draw the region in it, or "
                         "leave the image out")
        return region(raw, self.threshold)

    def _no_mask_message(self, image: Path, frame: int | None) -> str:
        stem = _strip_suffix(image.name)
        names = list(dict.fromkeys([image.name, f"{stem}.png"]
                                   + ([f"{stem}_frame{frame:04d}.png"] if frame is not None else [])))
        return (f"{image}: no mask for this image in the mask folder {self.spec} (looked for a file named "
                f"{' or '.join(names)}, in any subfolder; several are told apart by the image's parent folder "
                f"{image.parent.name}/). Add its mask there under one of those names (0 outside the region; "
                "medgap segment predict writes <stem>.png), or leave the image out of the data")

    def __call__(self, image: str | Path, frame):
        return self.apply(image, frame)

    def apply(self, image: str | Path, frame):
        """The frame with only its region kept (a new :class:`medgap.io.Frame`, meta kept, ``roi`` noted)."""
        from dataclasses import replace

        m = self.mask(image, frame)
        try:
            pixels = apply_roi(frame.pixels, m, self.mode)
        except SegmentError as e:
            raise SegmentError(f"{image}: {e}") from None
        return replace(frame, pixels=pixels, meta={**frame.meta, "roi": str(self)})


def roi_transform(roi: str | Path | None, mode: str = "crop", device: str = "cpu"):
    """``RoiSource(roi, mode)`` (callable as its ``apply``) for a data path
    (:func:`medgap.data.tensors.decode_items`), or None when no region is asked for."""
    return None if roi is None else RoiSource(Path(roi), mode, device=device)


def roi_source(roi: str | Path | None, mode: str = "crop", device: str = "cpu") -> RoiSource | None:
    """A :class:`RoiSource` for ``medgap quality/study --roi`` (None when no region is asked for)."""
    return None if roi is None else RoiSource(Path(roi), mode, device=device)
