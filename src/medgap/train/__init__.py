"""Fine-tuning on Lightning with patient-grouped cross-validation and a self-describing run directory;
``load_run`` reloads a finished run as (model, transform, classes)."""

from medgap.train.load import LoadedRun, RunLoadError, load_run
from medgap.train.run import ConfigError, FinetuneConfig, run_finetune

__all__ = ["ConfigError", "FinetuneConfig", "LoadedRun", "RunLoadError", "load_run", "run_finetune"]
