"""``explain_run``: CAMs, first-layer kernels and effective receptive fields of a trained run (or of every size of
a resolution run), written as PNG figures (``cam_*``, ``kernels_*``, ``erf_*``), ``erf.csv`` and
``explanation.html``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from medgap.explain.cam import CAM_LABELS, check_methods, class_activation_maps, overlay
from medgap.explain.config import ExplainConfig
from medgap.explain.erf import effective_receptive_field, fit_gaussian
from medgap.explain.errors import ExplainError
from medgap.explain.layers import default_target_layer, first_conv, get_layer


@dataclass
class Figure:
    path: Path
    caption: str
    section: str


@dataclass
class ExplanationResult:
    """What :func:`explain_run` wrote: ``figures`` (path, caption, section), ``erf`` (member, network, input
    size, sigma in pixels, moment sigma, sigma as a fraction of the input) and the page."""

    out: Path
    figures: list[Figure]
    erf: pd.DataFrame
    page: Path | None = None
    notes: list[str] = field(default_factory=list)


def run_members(run_dir: Path) -> dict[str, Path]:
    """A finetune run -> {its name: it}; a resolution run -> {"<s> px": run/size_<s>} in size order."""
    run_dir = Path(run_dir)
    config = run_dir / "config.json"
    if not config.exists():
        raise ExplainError(f"{run_dir}: no config.json; pass the --out folder of medgap finetune or medgap resolution")
    recorded = json.loads(config.read_text())
    if "sizes" in recorded:
        sizes = sorted(int(p.name.removeprefix("size_")) for p in run_dir.glob("size_*") if p.name[5:].isdigit())
        if not sizes:
            raise ExplainError(f"{run_dir}: a resolution run without size_<s> folders; rerun its medgap resolution "
                               f"command")
        return {f"{s} px": run_dir / f"size_{s}" for s in sizes}
    return {run_dir.name: run_dir}


def collect_images(paths: list[Path], limit: int) -> list[Path]:
    """Files as given, folders expanded to their readable image files (sorted), at most ``limit``."""
    from medgap.io import SUPPORTED_SUFFIXES

    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise ExplainError(f"--images {p}: no such file or folder")
    if not out:
        raise ExplainError("no images to explain: give --images FILE_OR_FOLDER (repeat it for several)")
    return out[:limit]


def _read(paths: list[Path], log: Callable[[str], None]):
    from medgap.io import read_frames

    frames, used = [], []
    for p in paths:
        try:
            frames.append(next(iter(read_frames(p))))
            used.append(p)
        except Exception as e:  # noqa: BLE001  (any decoder's error: the file is skipped and named)
            log(f"skipped {p}: {e}")
    if not frames:
        raise ExplainError("none of the --images could be read")
    return frames, used


def _models(backbone: str, n_out: int, seed: int, log: Callable[[str], None]) -> dict[str, torch.nn.Module]:
    """The untrained comparisons of the ERF: ImageNet-initialised (when its weights are at hand) and random."""
    from medgap.models import create_model

    out = {}
    try:
        out["ImageNet-initialised"] = create_model(backbone, "imagenet", num_classes=n_out).eval()
    except Exception as e:  # noqa: BLE001  (PretrainedUnavailable offline, or the hub unreachable)
        log(f"ImageNet weights of {backbone} not available here ({type(e).__name__}); the ERF comparison leaves "
            f"them out")
    torch.manual_seed(seed)
    out["random"] = create_model(backbone, "scratch", num_classes=n_out).eval()
    return out


def _spatial_size(model: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """The (h, w) of ``layer``'s output for input ``x``."""
    seen = []
    handle = layer.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[-2:])))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen[0] if seen else (0, 0)


def explain_run(cfg: ExplainConfig, log: Callable[[str], None] = print) -> ExplanationResult:
    """CAMs of the first ``max_images`` images, first-layer kernels (trained and as initialised) and the ERF of
    the trained, an ImageNet-initialised and a random network (averaged over ``erf_images`` images) for the run,
    or for every size of a resolution run. Writes the figures, erf.csv and explanation.html into ``cfg.out_dir``.

    Raises:
        ExplainError: no run, no images, an unknown method or layer, a run whose model has no gradient (an SVM).
        RunLoadError / CheckpointError: the run cannot be reloaded.
    """
    from medgap.data.tensors import to_square_uint8
    from medgap.report.explanation import plot_cams, plot_erfs, plot_kernels, write_explanation_page
    from medgap.train.load import FeaturesClassifier, load_run

    methods = check_methods(cfg.method_list)
    if cfg.max_images < 1 or cfg.erf_images < 1:
        raise ExplainError("--max-images and --erf-images must be at least 1")
    members = run_members(cfg.run_dir)
    out = cfg.out_dir
    out.mkdir(parents=True, exist_ok=True)
    frames, paths = _read(collect_images(cfg.images, max(cfg.max_images, cfg.erf_images)), log)
    figures: list[Figure] = []
    erf_rows, erf_maps, notes = [], {}, []
    for name, run_dir in members.items():
        loaded = load_run(run_dir, fold=cfg.fold)
        model = loaded.model
        if isinstance(model, FeaturesClassifier):
            raise ExplainError(f"{run_dir}: a features run with an SVM has no gradient to explain; explain a run "
                               f"whose classifier is the network's head")
        size = loaded.transform.image_size
        stem = name.replace(" ", "")
        x = torch.stack([loaded.transform(f) for f in frames])
        rgb = [to_square_uint8(f, size) for f in frames]
        layer_name = cfg.target_layer or default_target_layer(model)
        layer = get_layer(model, layer_name)
        with torch.no_grad():
            out_raw = model(x[:cfg.max_images]).float()
        prob = torch.softmax(out_raw, 1) if loaded.task == "classify" else torch.sigmoid(out_raw)
        if cfg.target is not None:
            if cfg.target not in loaded.classes:
                raise ExplainError(f"--target {cfg.target!r}: the run's classes are {', '.join(loaded.classes)}")
            targets = [loaded.classes.index(cfg.target)] * len(prob)
        else:
            targets = prob.argmax(1).tolist()
        log(f"{name}: CAMs ({', '.join(methods)}) on layer {layer_name} of {type(model).__name__}, "
            f"{len(targets)} image(s)")
        grid = _spatial_size(model, layer, x[:1])
        cells = grid[0] * grid[1]
        if cells < 16:
            what = ("one value: it cannot localise anything" if cells == 1 else
                    f"{cells} values, upsampled: it can only tell coarse parts of the image apart")
            notes.append(f"{name}: the target layer {layer_name} is {grid[0]}x{grid[1]} at this input size, so a CAM "
                         f"has {what}; explain a larger input or an earlier layer (--target-layer)")
        cams = class_activation_maps(model, x[:cfg.max_images], layer, methods, targets)
        titles = [f"{paths[i].name}\n{loaded.classes[t]} p={float(prob[i, t]):.2f}" for i, t in enumerate(targets)]
        path = plot_cams(rgb[:cfg.max_images], {CAM_LABELS[m]: v for m, v in cams.items()}, titles,
                         out / f"cam_{stem}.png", overlay)
        figures.append(Figure(path, f"{name}: class activation maps on layer {layer_name} ({grid[0]}x{grid[1]} "
                                    f"cells; fold {cfg.fold}'s model) for the class named above each row (default: the most probable one, "
                                    f"with its probability), overlaid on the {size} x {size} input. Red: the "
                                    f"regions that raise that class's score most (Eigen-CAM: the first principal "
                                    f"component of the activations, whatever the class).", "cam"))
        config = loaded.config
        others = _models(config["backbone"], len(loaded.classes), cfg.seed, log)
        conv_name, conv = first_conv(model)
        kernels = {"trained": conv.weight.detach().cpu().numpy()}
        if "ImageNet-initialised" in others:
            kernels["ImageNet-initialised"] = first_conv(others["ImageNet-initialised"])[1].weight.detach().cpu().numpy()
        path = plot_kernels(kernels, out / f"kernels_{stem}.png")
        figures.append(Figure(path, f"{name}: the {kernels['trained'].shape[0]} first-layer kernels ({conv_name}, "
                                    f"{kernels['trained'].shape[2]}x{kernels['trained'].shape[3]}, RGB as colour, "
                                    f"each scaled to its own range) after training and as initialised from "
                                    f"ImageNet; fine-tuning at a small learning rate changes them little.",
                              "kernels"))
        xe = x[:cfg.erf_images]
        for net_name, net in {"trained": model, **others}.items():
            erf = effective_receptive_field(net, xe)
            fit = fit_gaussian(erf)
            erf_maps[(name, net_name)] = (erf, fit)
            erf_rows.append({"member": name, "network": net_name, "input_size": size, "images": len(xe),
                             "sigma_px": fit.sigma, "sigma_moments_px": fit.sigma_moments,
                             "sigma_fraction": fit.sigma / size})
        log(f"{name}: ERF sigma (px) " + ", ".join(f"{r['network']} {r['sigma_px']:.1f}" for r in erf_rows
                                                   if r["member"] == name))
    table = pd.DataFrame(erf_rows)
    table.to_csv(out / "erf.csv", index=False)
    path = plot_erfs(erf_maps, out / "erf_maps.png")
    figures.append(Figure(path, "Effective receptive field: the squared gradient of the centre unit of the last "
                                f"feature map with respect to the input, averaged over {min(cfg.erf_images, len(frames))} "
                                "images, for the trained network, the same architecture with ImageNet weights and "
                                "with random weights (one row per input size of a resolution run); each map scaled to "
                                "its 99.5th percentile (brighter values clipped); the circle has the radius 2 sigma of "
                                "the least-squares Gaussian, m the sigma from the map's second moments (erf.csv).",
                          "erf"))
    if len(members) > 1:
        from medgap.report.explanation import plot_erf_sigma

        path = plot_erf_sigma(table, out / "erf_sigma.png")
        figures.append(Figure(path, "ERF width per input size (solid: least-squares Gaussian sigma; dashed: sigma "
                                    "from the map's second moments), in input pixels and as a fraction of the input. "
                                    "The dotted line is the moment sigma of a flat map (1/sqrt(12) of the side): an "
                                    "ERF near it covers the whole image, and a fitted sigma above it means the map "
                                    "is flatter than any Gaussian that fits inside the image.", "erf"))
    result = ExplanationResult(out, figures, table, notes=notes)
    result.page = write_explanation_page(result, cfg)
    return result


__all__ = ["ExplanationResult", "collect_images", "explain_run", "run_members"]
