"""Fine-tuning on Lightning with patient-grouped cross-validation and a self-describing run directory."""

from medgap.train.run import ConfigError, FinetuneConfig, run_finetune

__all__ = ["ConfigError", "FinetuneConfig", "run_finetune"]
