"""``medgap study``: score a collection, compare the groups, write the HTML report (the main job)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.table import Table

from medgap._options import option, to_dict
from medgap.cli import app
from medgap.cli._config import config_command
from medgap.cli._common import EXIT_CODES_HELP, EXIT_INTERRUPTED, UsageError, console, out_console, plain, writing
from medgap.cli.compare import print_result
from medgap.cli.quality import QualityConfig
from medgap.report import write_study_report
from medgap.report.comparison import write_comparisons
from medgap.stats import ComparisonError, ComparisonOptions, check_reference, compare_metrics


@dataclass
class StudyConfig:
    """``medgap study``: the quality command's options (scores go to OUT/scores.parquet or .csv) plus these."""

    quality: QualityConfig = field(default_factory=QualityConfig)
    comparison: ComparisonOptions = field(default_factory=ComparisonOptions)
    out: Path = option(Path("medgap-study"), "Run folder (scores, config.json, CSV/JSON, report.html).",
                       flags=("-o",))
    reference: str | None = option(None, "Reference group for the effect sizes (default: natural when the "
                                         "collection has it, else the first group, said so); must be a group of "
                                         "it (refused before scoring otherwise).")
    sensitivity: bool = option(False, "Also score and compare with one display choice changed at a time (CT window "
                                      "file/minmax/lung, a common short side, foreground crop) and show how each "
                                      "group's d against the reference moves (OUT/sensitivity/).")
    sensitivity_short_side: int = option(384, "The common short side, in pixels, of the sensitivity analysis's "
                                              "scale choice.")

    def run(self) -> tuple[int, Path | None]:
        self.quality.out = self.out / f"scores.{self.quality.format or 'parquet'}"
        self.quality.validate()  # before the run folder and config.json are written
        if self.reference is not None:  # the groups are known from the sources: refuse before scoring
            sources, _ = self.quality.sources()
            try:
                check_reference(self.reference, sorted({s.group for s in sources}))
            except ComparisonError as e:
                raise UsageError(f"--reference {self.reference}: {e}") from None
        self.out.mkdir(parents=True, exist_ok=True)
        with writing(self.out / "config.json"):
            (self.out / "config.json").write_text(json.dumps(to_dict(self), indent=1))  # what --config reads
        code, summary = self.quality.run()
        if code == EXIT_INTERRUPTED or summary is None:
            return code, None
        scores = (pd.read_csv(self.quality.out) if self.quality.format == "csv"
                  else pd.read_parquet(self.quality.out))
        console.print(f"[dim]statistics: comparing {len(self.quality.score_columns)} column(s) across groups "
                      f"(ANOVA, post hoc tests, mixed model, bootstrap CIs)...[/]", soft_wrap=True)
        comparisons = compare_metrics(scores, self.quality.score_columns, self.reference,
                                      **self.comparison.kwargs())
        for note in comparisons.notes:
            console.print(f"[yellow]note:[/] {plain(note, newlines=True)}", soft_wrap=True)
        write_comparisons(comparisons, self.out, overwrite=True)  # the run folder's own comparison, redone
        print_result(comparisons)
        self.sensitivity_result = self._sensitivity(comparisons, scores) if self.sensitivity else None
        with writing(self.out / "report.html"):
            report = write_study_report(
                self.out, scores, comparisons, config=to_dict(self), sensitivity=self.sensitivity_result,
                progress=lambda step: console.print(f"[dim]{plain(step)}[/]", soft_wrap=True),
                run_info={"files": summary.files_total})
        console.print(f"Report: {plain(report)}", soft_wrap=True)
        return code, report


    def _sensitivity(self, comparisons, scores: pd.DataFrame) -> pd.DataFrame:
        """The comparison again under each display choice (medgap.sensitivity), printed per metric."""
        from medgap.report.study import sensitivity_table
        from medgap.sensitivity import run_sensitivity

        q = self.quality
        sources, _ = q.sources()
        df = run_sensitivity(
            sources, q.created_metrics, self.out / "sensitivity", base=q.display, columns=q.score_columns,
            reference=comparisons.reference, compare_kwargs=self.comparison.kwargs(),
            short_side=self.sensitivity_short_side, base_scores=scores,
            score_kwargs=dict(workers=q.workers, video_stride=q.video_stride, nifti_axis=q.nifti_axis,
                              max_pixels=q.max_pixels or None, device=q.device, batch_size=q.batch_size),
            progress=lambda line: console.print(plain(line), soft_wrap=True))
        for metric in dict.fromkeys(df.metric):
            table = sensitivity_table(df[df.metric == metric]).drop(columns="metric").set_index("group")
            t = Table(title=plain(f"{metric}: Cohen's d vs {comparisons.reference} (95% CI) by display choice"))
            t.add_column("group")
            for c in table.columns:
                t.add_column(plain(c), justify="right")
            for group, row in table.iterrows():
                t.add_row(plain(group), *(plain(v) if isinstance(v, str) else "" for v in row))
            out_console.print(t)
        console.print(f"Sensitivity: {plain(self.out / 'sensitivity' / 'sensitivity.csv')}", soft_wrap=True)
        return df


def _run(cfg: StudyConfig) -> int:
    code, _ = cfg.run()  # errors become messages and exit codes in medgap.cli
    return code


def _upgrade(recorded: dict) -> dict:
    """A run folder's config.json: ``quality.out`` is set by the study from ``out`` (not an option)."""
    quality = dict(recorded.get("quality") or {})
    quality.pop("out", None)
    return {**recorded, "quality": quality}


config_command(
    app, StudyConfig, _run, name="study", exclude=("quality.out",), upgrade=_upgrade,
    help="The domain-gap study in one command: quality scores for every image, group statistics (ANOVA, post hoc "
         "tests, Cohen's d vs the reference group) and a self-contained HTML report.",
    epilog=(
        "Examples:\n\n"
        "  medgap study                                      # the embedded default -> medgap-study/report.html\n\n"
        "  medgap study --group natural=imagenet/ --group cxr=cxr/ --group pocus=lus/ --out runs/gap\n\n"
        "  medgap study --manifest MANIFEST.csv --group-column modality --workers 2 --out runs/gap\n\n"
        "A rerun with the same --out reuses the scores already computed; --config OUT/config.json reruns the "
        "study with its recorded options.\n\n" + EXIT_CODES_HELP
    ),
)
