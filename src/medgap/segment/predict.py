"""Predict masks with a ``segment train`` run: PNG for image files (named after the image, its size, 0/255),
DICOM-SEG (plus the PNG) for DICOM input, NIfTI for NIfTI volumes (the input's affine), and overlays (the
mask's outline over the image) as PNG. The run's fold models are averaged (mean probability)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from medgap.segment.errors import SegmentError
from medgap.segment.masks import DEFAULT_KEEP_LARGEST, keep_largest
from medgap.segment.train import MODEL_FILE, PREPROCESSING_FILE, predict_probabilities, to_input, to_original


@dataclass
class Segmenter:
    """A trained run's fold models and input rule; :meth:`predict` turns a frame into its boolean mask.
    ``folds[i]`` is the fold whose ``model.pt`` is ``models[i]``; ``keep_largest``: the post-processing of
    predicted masks (the N largest connected components, 0: none; :func:`medgap.segment.masks.keep_largest`)."""

    models: list[torch.nn.Module]
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    device: torch.device
    run: Path
    folds: list[int] = field(default_factory=list)
    keep_largest: int = DEFAULT_KEEP_LARGEST

    def _models(self, folds: Sequence[int] | None) -> list[torch.nn.Module]:
        if folds is None:
            return self.models
        index = {k: i for i, k in enumerate(self.folds or range(len(self.models)))}
        missing = [k for k in folds if k not in index]
        if missing:
            raise SegmentError(f"{self.run}: fold {missing[0]} has no model.pt; rerun its training command to "
                               "finish it")
        return [self.models[index[k]] for k in folds]

    def probabilities(self, frames: list, folds: Sequence[int] | None = None) -> np.ndarray:
        """Mean probability of the models of ``folds`` (default: every fold) at the network's size."""
        x = torch.from_numpy(np.stack([to_input(f, self.image_size) for f in frames])).float()
        mean = torch.tensor(self.mean).view(1, 3, 1, 1) * 255
        std = torch.tensor(self.std).view(1, 3, 1, 1) * 255
        return predict_probabilities(self._models(folds), (x - mean) / std, self.device)

    def raw(self, frame, threshold: float = 0.5, folds: Sequence[int] | None = None) -> np.ndarray:
        """The thresholded prediction at the frame's size, before post-processing."""
        return to_original(self.probabilities([frame], folds)[0], frame.height, frame.width, threshold)

    def predict(self, frame, threshold: float = 0.5, folds: Sequence[int] | None = None) -> np.ndarray:
        """The frame's mask at its own size (boolean), post-processed (``keep_largest``)."""
        return keep_largest(self.raw(frame, threshold, folds), self.keep_largest)


def load_segmenter(run: str | Path, device: str = "auto", keep_largest: int = DEFAULT_KEEP_LARGEST) -> Segmenter:
    """The models of a ``medgap segment train`` run (every fold's ``model.pt``)."""
    from medgap.models.checkpoints import load_checkpoint_file
    from medgap.segment.model import create_unet, pick_device

    run = Path(run)
    pre_file = run / PREPROCESSING_FILE
    if not pre_file.is_file():
        raise SegmentError(f"{run}: not a segment-train run directory (no {PREPROCESSING_FILE}); train one with "
                           f"medgap segment train --pairs CSV --out {run}")
    pre = json.loads(pre_file.read_text())
    files = sorted(run.glob(f"fold_*/{MODEL_FILE}"))
    if not files:
        raise SegmentError(f"{run}: no fold has finished (no fold_<k>/{MODEL_FILE}); rerun the training command to "
                           "resume it")
    dev = pick_device(device)
    models = []
    for f in files:
        model = create_unet(pre["encoder"], "scratch")
        model.load_state_dict(load_checkpoint_file(f, f"train the run again (medgap segment train ... --out {run})"))
        models.append(model.to(dev).eval())
    folds = [int(f.parent.name.rsplit("_", 1)[1]) for f in files]
    return Segmenter(models, int(pre["image_size"]), tuple(pre["mean"]), tuple(pre["std"]), dev, run, folds,
                     keep_largest)


def overlay(image, mask: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8: the image (a Frame, shown with its DICOM window, or an array) with the mask's outline in
    yellow and its inside tinted red, and the reference mask ``truth`` (when given) outlined in cyan."""
    from medgap.io import to_rgb255

    rgb = np.clip(np.rint(to_rgb255(image)), 0, 255).astype(np.uint8)
    tint = rgb.copy()
    tint[mask] = (0.7 * tint[mask] + 0.3 * np.array([255, 64, 64])).astype(np.uint8)
    thickness = max(1, round(max(mask.shape) / 300))
    for m, colour in ((truth, (0, 230, 255)), (mask, (255, 230, 0))):
        if m is not None:
            contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(tint, contours, -1, colour, thickness)
    return tint


def write_overlay(path: str | Path, image, mask: np.ndarray, truth: np.ndarray | None = None) -> Path:
    """:func:`overlay` saved as PNG (folders made)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(overlay(image, mask, truth), cv2.COLOR_RGB2BGR))
    return path


def _inputs(images: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """(file, its path relative to the folder given, or its name) of every input file."""
    from medgap.io import scan_folder

    out = []
    for item in images:
        item = Path(item)
        if item.is_dir():
            out += [(f, f.relative_to(item)) for f in scan_folder(item)]
        elif item.exists():
            out.append((item, Path(item.name)))
        else:
            raise SegmentError(f"{item}: no such file or folder")
    if not out:
        raise SegmentError("no input images: give files or folders with --images")
    return out


def output_stems(relative: list[Path]) -> list[Path]:
    """Output names without suffix: the image's relative path without its suffix; two inputs that would share
    one (x.jpg and x.png) keep their suffix in the name (x_jpg, x_png)."""
    from medgap.io.readers import suffix_of

    stems = [r.parent / r.name[: len(r.name) - len(suffix_of(r))] if suffix_of(r) else r for r in relative]
    seen: dict[Path, int] = {}
    for s in stems:
        seen[s] = seen.get(s, 0) + 1
    return [s.parent / f"{s.name}_{suffix_of(r).lstrip('.').replace('.', '_')}" if seen[s] > 1 else s
            for s, r in zip(stems, relative)]


def predict_masks(run: str | Path | Segmenter, images: Iterable[str | Path], out: str | Path, *,
                  threshold: float = 0.5, overlays: bool = True, device: str = "auto",
                  keep_largest: int = DEFAULT_KEEP_LARGEST, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Write the masks of ``images`` (files or folders) under ``out``; returns one row per written mask:
    ``image, frame, mask, dicom_seg, nifti, overlay, fraction`` (the region's share of the frame), and
    ``error`` for files that could not be read (the others are still written)."""
    from medgap.io import ImageReadError, read_frames
    from medgap.io.readers import DICOM_SUFFIXES, NIFTI_SUFFIXES, is_dicom_file, suffix_of

    seg = run if isinstance(run, Segmenter) else load_segmenter(run, device, keep_largest)
    out = Path(out)
    files = _inputs(images)
    rows = []
    for (path, rel), stem in zip(files, output_stems([r for _, r in files])):
        suffix = suffix_of(path)
        try:
            frames = list(read_frames(path))
        except ImageReadError as e:
            rows.append({"image": str(path), "error": e.reason})
            log(f"skipped {path}: {e.reason}")
            continue
        masks = [seg.predict(f, threshold) for f in frames]
        base = out / stem
        base.parent.mkdir(parents=True, exist_ok=True)
        record = {"image": str(path)}
        if suffix in NIFTI_SUFFIXES:
            record["nifti"] = str(_write_nifti(path, frames, masks, base.with_name(base.name + ".nii.gz")))
        else:
            for f, m in zip(frames, masks):
                name = base.name if f.frame is None else f"{base.name}_frame{f.frame:04d}"
                png = base.with_name(name + ".png")
                cv2.imwrite(str(png), m.astype(np.uint8) * 255)
                row = {**record, "frame": f.frame, "mask": str(png), "fraction": float(m.mean())}
                if overlays:
                    row["overlay"] = str(write_overlay(out / "overlays" / stem.parent / (name + ".png"), f, m))
                rows.append(row)
            if suffix in DICOM_SUFFIXES or is_dicom_file(path):
                from medgap.segment.dicom_seg import write_dicom_seg

                dcm = write_dicom_seg(path, np.stack(masks) if len(masks) > 1 else masks[0],
                                      base.with_name(base.name + ".seg.dcm"))
                for r in rows[-len(masks):]:
                    r["dicom_seg"] = str(dcm)
            continue
        rows.append({**record, "fraction": float(np.mean([m.mean() for m in masks]))})
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "masks.csv", index=False)
    return table


def _write_nifti(path: Path, frames: list, masks: list[np.ndarray], out: Path) -> Path:
    """The slice masks (frames along the last voxel axis, as :func:`medgap.io.read_frames` gives them) as a uint8
    0/1 NIfTI volume with the input's affine."""
    import nibabel as nib

    src = nib.load(str(path))
    shape = src.shape[:3] if len(src.shape) >= 3 else (*src.shape, 1)
    vol = np.zeros(shape, np.uint8)
    for f, m in zip(frames, masks):
        k = 0 if f.frame is None else f.frame
        vol[:, :, k] = np.flipud(m).T  # read_frames shows slice k as flipud(data[:, :, k].T)
    img = nib.Nifti1Image(vol, src.affine)
    img.set_qform(src.affine, code=int(src.header["qform_code"]) or 1)
    img.set_sform(src.affine, code=int(src.header["sform_code"]) or 1)
    nib.save(img, str(out))
    return out
