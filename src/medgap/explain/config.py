"""``medgap explain``'s options (no torch here, for ``medgap --help``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medgap._options import option


@dataclass
class ExplainConfig:
    """Explain a trained run (``medgap finetune``) or every size of a ``medgap resolution`` run."""

    run_dir: Path = option(help="Run directory of medgap finetune, or of medgap resolution (every size_<s>).",
                           argument=True)
    images: list[Path] = option(default_factory=list, help="Images to explain: files or folders (their image files, "
                                "sorted); repeat the option for several.", metavar="PATH")
    out: Path | None = option(None, "Folder for the figures and explanation.html (default: RUN_DIR/explain).",
                              flags=("-o",))
    fold: int = option(0, "The fold whose model is explained (its best checkpoint).")
    methods: str = option("gradcam,gradcam++,layercam,eigencam",
                          "CAM methods, comma-separated: gradcam, gradcam++, layercam, eigencam, xgradcam, hirescam, "
                          "scorecam (slow: one forward pass per channel).", metavar="M1,M2,...")
    target_layer: str | None = option(None, "CAM target layer (a module name of the timm model); default per "
                                            "architecture: EfficientNet bn2, ResNet layer4, DenseNet features.norm5, "
                                            "ConvNeXt stages.3.", metavar="MODULE")
    target: str | None = option(None, "Class (or finding) whose CAM is shown; default: each image's most probable "
                                      "one.", metavar="CLASS")
    max_images: int = option(4, "Images shown with their CAMs (the first N).")
    erf_images: int = option(16, "Images the effective receptive field is averaged over (the first N).")
    seed: int = option(0, "Seed of the randomly initialised network of the ERF comparison.")

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self.images = [Path(p) for p in (self.images or [])]
        if self.out is not None:
            self.out = Path(self.out)

    @property
    def method_list(self) -> list[str]:
        return [m.strip() for m in str(self.methods).split(",") if m.strip()]

    @property
    def out_dir(self) -> Path:
        return self.out if self.out is not None else self.run_dir / "explain"


