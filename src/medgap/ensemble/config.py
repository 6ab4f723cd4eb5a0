"""``medgap resolution``'s options: every fine-tuning option (:class:`medgap.train.config.FinetuneConfig`, one
protocol for every size) plus the input sizes and the evaluation's. No torch here (``medgap --help``)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from medgap._options import option
from medgap.train.config import ConfigError, FinetuneConfig


@dataclass
class ResolutionConfig(FinetuneConfig):
    """One model per input size (``sizes``) with the options of ``medgap finetune`` (``image_size`` is set per
    size), into ``out/size_<s>/``; the stacking ensemble and the evaluation into ``out``."""

    sizes: str = option("64,128,256", "Input sizes in pixels, comma-separated: one model per size, each trained "
                                      "with the same folds and options.", metavar="S1,S2,...")
    stacking_l2: float = option(1e-3, "Penalty on the stacking weights' logits (pulls toward equal weights when the "
                                      "validation predictions cannot tell the sizes apart; 0 for none).")
    bootstrap: int = option(2000, "Patient-bootstrap resamples for the CIs and the paired differences.")

    @property
    def size_list(self) -> list[int]:
        """``sizes`` as sorted distinct integers (a ConfigError names a bad entry)."""
        spec = self.sizes
        parts = spec.split(",") if isinstance(spec, str) else list(spec)
        try:
            values = [int(str(p).strip()) for p in parts if str(p).strip()]
        except ValueError:
            raise ConfigError(f"--sizes {spec!r}: give input sizes in pixels, comma-separated, e.g. 64,128,256") \
                from None
        if len(set(values)) < 2 or min(values) < 16:
            raise ConfigError(f"--sizes {spec!r}: at least two different sizes of 16 pixels or more (the backbones "
                              f"downsample 32 times), e.g. 64,128,256")
        return sorted(set(values))

    def for_size(self, size: int) -> FinetuneConfig:
        """The fine-tuning config of one size: these options, ``image_size=size``, ``out=out/size_<size>``."""
        base = FinetuneConfig(**{f.name: getattr(self, f.name) for f in fields(FinetuneConfig)})
        return replace(base, image_size=int(size), out=Path(self.out) / f"size_{int(size)}")
