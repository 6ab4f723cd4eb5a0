"""``run_benchmark``: does in-domain pretraining help on these data? Scratch, ImageNet and USCL-style in-domain
pretraining (plus any other initialisation) fine-tuned with one protocol and evaluated with one set of
statistics.

Protocol, the same for every initialisation:

- patient-grouped k-fold cross-validation (:func:`medgap.train.run.run_cv`), repeated over ``seeds`` with other
  folds; the epoch is chosen by early stopping on an inner validation split of the training patients, never on
  the test fold;
- the in-domain initialisation is pretrained INSIDE each outer fold, on the videos of that fold's training
  patients (the inner validation patients' videos give the contrastive validation loss that chooses the
  pretraining checkpoint), so no test patient reaches pretraining; or once on a disjoint video set
  (``pretrain_videos``, whose patients must not be in the data), which the outputs name;
- the held-out predictions of every run are evaluated per item, per file (soft voting over a clip's frames) and
  per patient with :func:`medgap.evaluation.evaluate_run` (patient-bootstrap CIs), and every pair of
  initialisations is compared on the same items (``against``: paired patient-bootstrap differences).

Outputs in ``out``: ``seed_<s>/<init>/`` (each a ``medgap finetune`` run directory; in-fold pretraining runs in
``fold_<k>/pretrain/``), ``results.csv`` (seed, init, unit, class, metric, value, CI), ``per_fold.csv``,
``differences.csv``, ``summary.csv`` (the printed table), ``pretraining.csv`` (for every pretraining: the
patients it saw and its best epoch), ``benchmark.png`` and ``benchmark.json`` (config and versions)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medgap._options import to_dict
from medgap.pretrain.config import PRESETS, BenchmarkConfig, PretrainConfig, PretrainError

IN_DOMAIN = "pretrain"
"""The initialisation name of in-domain pretraining in ``inits``."""
UNITS = ("item", "file", "patient")
METRICS = ("accuracy", "balanced_accuracy", "macro_auc")


@dataclass
class BenchmarkResult:
    out: Path
    results: pd.DataFrame
    differences: pd.DataFrame
    per_fold: pd.DataFrame
    summary: pd.DataFrame
    pretraining: pd.DataFrame
    notes: list[str]


def _safe_name(init: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in init)
    return keep.strip("_") or "init"


def _finetune_config(cfg: BenchmarkConfig, init: str, seed: int, out: Path):
    from medgap.train.config import FinetuneConfig

    s = cfg.setting
    return FinetuneConfig(
        data=cfg.data, out=out, task="classify", backbone=s("backbone"), init=init, strategy=PRESETS[cfg.preset]["strategy"],
        trainable_stages=PRESETS[cfg.preset]["trainable_stages"], folds=s("folds"), image_size=s("image_size"),
        epochs=s("epochs"), batch_size=PRESETS[cfg.preset]["batch_size"], lr=PRESETS[cfg.preset]["lr"],
        backbone_lr_scale=PRESETS[cfg.preset]["backbone_lr_scale"], patience=PRESETS[cfg.preset]["patience"],
        video_stride=s("video_stride"), seed=seed, path_column=cfg.path_column, label_column=cfg.label_column,
        group_column=cfg.group_column, filter=cfg.filter, accelerator=cfg.accelerator, precision=cfg.precision)


def pretrain_config(cfg: BenchmarkConfig, out: Path, videos: Path, seed: int) -> PretrainConfig:
    """The pretraining of the benchmark: the preset's backbone, size and schedule, from ``pretrain_init``."""
    s = cfg.setting
    return PretrainConfig(videos=videos, out=out, backbone=s("backbone"), init=cfg.pretrain_init,
                          image_size=s("image_size"), epochs=s("pretrain_epochs"),
                          batch_size=PRESETS[cfg.preset]["pretrain_batch_size"], ce_weight=cfg.ce_weight,
                          frames_per_video=PRESETS[cfg.preset]["frames_per_video"], seed=seed,
                          path_column=cfg.path_column, label_column=cfg.label_column,
                          group_column=cfg.group_column, accelerator=cfg.accelerator, precision=cfg.precision)


def _in_fold_task(bench: BenchmarkConfig, ft_cfg, records: list, log: Callable[[str], None], callbacks: Sequence):
    """A classify task whose head initialisation first pretrains the backbone on the fold's training patients'
    videos (:func:`run_pretrain`, validation NT-Xent on the inner validation patients' videos), loads it into the
    fold's model, then fits the head as classify does."""
    from medgap.data.items import is_video
    from medgap.train.tasks import ClassifyTask

    class InFoldPretrainTask(ClassifyTask):
        def init_head(self, ctx, model):
            from medgap.models import load_checkpoint
            from medgap.pretrain.run import run_pretrain
            from medgap.pretrain.videos import VideoRecord

            paths = np.asarray(ctx.ds.paths)
            labels = np.asarray(ctx.ds.labels)
            roles = {}
            for mask, role in ((ctx.train, "train"), (ctx.val, "val")):
                for g in set(ctx.groups[mask]):
                    roles[str(g)] = role
            videos, seen = [], set()
            for i in np.flatnonzero(ctx.train | ctx.val):  # test items are never looked at
                p = paths[i]
                if p in seen or not is_video(Path(p)):
                    continue
                seen.add(p)
                videos.append(VideoRecord(Path(p), str(ctx.groups[i]), str(labels[i])))
            run_dir = ctx.fold_dir / "pretrain"
            pcfg = pretrain_config(bench, run_dir, Path(bench.data), ctx.seed)
            ctx.log(f"fold {ctx.k}: in-domain pretraining on {sum(roles[v.patient] == 'train' for v in videos)} "
                    f"training videos of this fold ({len({v.patient for v in videos})} patients)")
            result = run_pretrain(pcfg, log=ctx.log, callbacks=callbacks, videos=videos, roles=roles,
                                  cache_dir=Path(bench.out) / "frame_cache")
            _, unexpected = load_checkpoint(model, run_dir / "backbone.pt")
            if unexpected:
                raise PretrainError(f"{run_dir / 'backbone.pt'}: {len(unexpected)} tensors do not fit the fold's "
                                    f"model (e.g. {unexpected[0]!r})")
            split = result.split
            records.append({"seed": ft_cfg.seed, "fold": ctx.k, "run": str(run_dir),
                            "train_patients": ";".join(sorted(set(split.patient[split.role == "train"]))),
                            "val_patients": ";".join(sorted(set(split.patient[split.role == "val"]))),
                            "test_patients": ";".join(sorted(set(map(str, ctx.groups[ctx.test])))),
                            "videos": len(split), "best_epoch": result.best_epoch,
                            "best_val_loss": result.best_val_loss})
            info = super().init_head(ctx, model) or {}
            return {**info, "pretrain_run": str(run_dir), "pretrain_best_epoch": result.best_epoch}

    return InFoldPretrainTask(ft_cfg)


def _evaluate(run_dir: Path, units: Sequence[str], n_boot: int):
    from medgap.evaluation import evaluate_run

    out = {}
    for unit in units:
        try:
            out[unit] = evaluate_run(run_dir, aggregate=unit, bootstrap=n_boot)
        except Exception as e:  # noqa: BLE001  a unit that does not apply (a patient with two classes)
            out[unit] = e
    return out


def _units_for(data_groups_one_label: bool) -> tuple[str, ...]:
    return UNITS if data_groups_one_label else ("item", "file")


def run_benchmark(cfg: BenchmarkConfig, log: Callable[[str], None] = print, callbacks: Sequence = ()
                  ) -> BenchmarkResult:
    """Run the benchmark (see the module doc); rerunning the same command reuses finished runs."""
    from medgap.data.items import load_items
    from medgap.evaluation import evaluate_run
    from medgap.train.config import _parse_filter
    from medgap.train.run import check_config, run_cv
    from medgap.train.tasks import ClassifyTask

    out = Path(cfg.out)
    inits = cfg.init_list
    if len(inits) < 2 or len(set(inits)) != len(inits):
        raise PretrainError(f"--inits {cfg.inits!r}: name at least two different initialisations to compare")
    seeds = int(cfg.setting("seeds"))
    if seeds < 1 or cfg.bootstrap < 100:
        raise PretrainError("--seeds must be >= 1 and --bootstrap >= 100")
    column, values = _parse_filter(cfg.filter)
    items = load_items(cfg.data, path_column=cfg.path_column, label_column=cfg.label_column,
                       group_column=cfg.group_column, filter_column=column, filter_values=tuple(values))
    data_patients = {it.group_id for it in items}
    labels_per_patient = pd.DataFrame({"g": [it.group_id for it in items], "l": [it.label for it in items]}
                                      ).groupby("g").l.nunique()
    units = _units_for(bool((labels_per_patient <= 1).all()))
    notes: list[str] = []
    for init in inits:  # every option checked before anything runs
        check_config(_finetune_config(cfg, cfg.pretrain_init if init == IN_DOMAIN else init, 0, out / "check"))
    out.mkdir(parents=True, exist_ok=True)
    from medgap.environment import environment

    (out / "benchmark.json").write_text(json.dumps({
        "config": to_dict(cfg),
        "preset": PRESETS[cfg.preset], "versions": environment()}, indent=1))
    shared_pretrain = None
    records: list[dict] = []
    if cfg.pretrain_videos is not None and IN_DOMAIN in inits:
        from medgap.pretrain.run import run_pretrain
        from medgap.pretrain.videos import load_videos

        videos = load_videos(cfg.pretrain_videos, path_column=cfg.path_column, label_column=cfg.label_column,
                             group_column=cfg.group_column)
        overlap = sorted({v.patient for v in videos} & data_patients)
        if overlap:
            raise PretrainError(f"--pretrain-videos {cfg.pretrain_videos}: {len(overlap)} patient(s) are also in "
                                f"--data (e.g. {overlap[0]!r}); pretraining on test patients would flatter it. Give "
                                f"videos of other patients, or leave --pretrain-videos out to pretrain inside each "
                                f"fold")
        shared_pretrain = out / "pretrain_shared"
        result = run_pretrain(pretrain_config(cfg, shared_pretrain, Path(cfg.pretrain_videos), 0), log=log,
                              callbacks=callbacks, cache_dir=out / "frame_cache")
        records.append({"seed": "all", "fold": "all", "run": str(shared_pretrain),
                        "train_patients": ";".join(sorted(set(result.split.patient[result.split.role == "train"]))),
                        "val_patients": ";".join(sorted(set(result.split.patient[result.split.role == "val"]))),
                        "test_patients": "", "videos": len(result.split), "best_epoch": result.best_epoch,
                        "best_val_loss": result.best_val_loss})
        notes.append(f"in-domain pretraining on a disjoint video set: {cfg.pretrain_videos} ({len(videos)} videos, "
                     f"no patient of --data)")
    elif IN_DOMAIN in inits:
        notes.append("in-domain pretraining inside each outer fold, on the videos of that fold's training patients "
                     "(the inner validation patients' videos choose its checkpoint)")
    label = {IN_DOMAIN: "pretrain (disjoint videos)" if shared_pretrain else "pretrain (in fold)"}

    rows, diffs, folds = [], [], []
    decoded: dict = {}  # every run decodes the same items: once
    for s in range(seeds):
        seed = 10 * s  # fold k of repeat s seeds with 10 s + k
        run_dirs = {}
        for init in inits:
            run_dir = out / f"seed_{s}" / _safe_name(init)
            if init == IN_DOMAIN:
                spec = f"pretrain:{shared_pretrain}" if shared_pretrain else cfg.pretrain_init
                ft = _finetune_config(cfg, spec, seed, run_dir)
                task = ClassifyTask(ft) if shared_pretrain else _in_fold_task(cfg, ft, records, log, callbacks)
            else:
                ft = _finetune_config(cfg, init, seed, run_dir)
                task = ClassifyTask(ft)
            log(f"repeat {s + 1}/{seeds}, init {label.get(init, init)}: {run_dir}")
            check_config(ft)
            run_cv(ft, task, log=log, callbacks=callbacks, decoded=decoded)
            run_dirs[init] = run_dir
            evs = _evaluate(run_dir, units, cfg.bootstrap)
            for unit, ev in evs.items():
                if isinstance(ev, Exception):
                    notes.append(f"seed {s}, {init}, per {unit}: not evaluated ({ev})")
                    continue
                m = ev.metrics
                rows += [{"seed": s, "init": label.get(init, init), "unit": unit, **r}
                         for r in m.to_dict("records")]
                if unit == units[-1] or unit == "file":
                    folds += [{"seed": s, "init": label.get(init, init), "unit": unit, **r}
                              for r in ev.per_fold.to_dict("records")]
        for i, a in enumerate(inits):
            for b in inits[:i]:
                for unit in units:
                    try:
                        ev = evaluate_run(run_dirs[a], against=run_dirs[b], aggregate=unit, bootstrap=cfg.bootstrap)
                    except Exception as e:  # noqa: BLE001
                        notes.append(f"seed {s}, {a} vs {b}, per {unit}: not compared ({e})")
                        continue
                    diffs += [{"seed": s, "a": label.get(a, a), "b": label.get(b, b), "unit": unit, **r}
                              for r in ev.differences.to_dict("records")]
    results, differences = pd.DataFrame(rows), pd.DataFrame(diffs)
    per_fold, pretraining = pd.DataFrame(folds), pd.DataFrame(records)
    summary = summary_table(results)
    results.to_csv(out / "results.csv", index=False)
    differences.to_csv(out / "differences.csv", index=False)
    per_fold.to_csv(out / "per_fold.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    pretraining.to_csv(out / "pretraining.csv", index=False)
    (out / "notes.txt").write_text("\n".join(notes) + "\n")
    from medgap.report.pretraining import benchmark_figure

    benchmark_figure(results, differences, out / "benchmark.png",
                     title=f"{Path(cfg.data).name} {cfg.filter or ''}: preset {cfg.preset}, {seeds} repeat(s) of "
                           f"{cfg.setting('folds')}-fold CV by patient")
    return BenchmarkResult(out, results, differences, per_fold, summary, pretraining, notes)


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (unit, init): accuracy, balanced accuracy and macro AUC of each repeat with its patient-
    bootstrap CI, and their mean over the repeats."""
    if results.empty:
        return pd.DataFrame()
    overall = results[(results["class"] == "overall") & results.metric.isin(METRICS)]
    rows = []
    for (unit, init), g in overall.groupby(["unit", "init"], sort=False):
        row = {"unit": unit, "init": init}
        for metric in METRICS:
            m = g[g.metric == metric].sort_values("seed")
            if m.empty:
                continue
            row[metric] = float(m.value.mean())
            row[f"{metric}_per_repeat"] = "; ".join(f"{v:.3f} ({lo:.3f}-{hi:.3f})"
                                                    for v, lo, hi in zip(m.value, m.ci_low, m.ci_high))
        rows.append(row)
    return pd.DataFrame(rows)


def difference_table(differences: pd.DataFrame) -> pd.DataFrame:
    """The overall rows of ``differences`` as text: A - B (CI) per unit, pair and metric, repeats side by side."""
    if differences.empty:
        return pd.DataFrame()
    d = differences[(differences["class"] == "overall") & differences.metric.isin(METRICS)]
    rows = []
    for (unit, a, b, metric), g in d.groupby(["unit", "a", "b", "metric"], sort=False):
        g = g.sort_values("seed")
        rows.append({"unit": unit, "A": a, "B": b, "metric": metric,
                     "A - B per repeat": "; ".join(f"{v:+.3f} ({lo:+.3f} to {hi:+.3f})"
                                                   for v, lo, hi in zip(g.difference, g.ci_low, g.ci_high))})
    return pd.DataFrame(rows)
