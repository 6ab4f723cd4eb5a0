"""``medgap pretrain``: USCL-style contrastive pretraining on videos (the work is
:func:`medgap.pretrain.run_pretrain`); the run directory then serves as ``--init pretrain:RUN_DIR``."""

from __future__ import annotations

from medgap.cli import app
from medgap.cli._common import EXIT_OK, EXIT_USAGE, console, plain, print_error
from medgap.cli._config import config_command
from medgap.pretrain.config import PretrainConfig


def _run(cfg: PretrainConfig) -> int:
    from medgap.cli._lightning_progress import EpochProgressBar
    from medgap.cli.finetune import _quiet_lightning
    from medgap.io import CollectionError
    from medgap.models import PretrainedUnavailable
    from medgap.pretrain import PretrainError, run_pretrain

    _quiet_lightning()
    try:
        result = run_pretrain(cfg, log=lambda s: console.print(plain(s, newlines=True), soft_wrap=True),
                              callbacks=[EpochProgressBar()])
    except (PretrainError, CollectionError, PretrainedUnavailable) as e:
        print_error(e)
        return EXIT_USAGE
    if result.best_epoch < 0:  # a DDP process other than the first: that one reports
        return EXIT_OK
    if len(result.history):
        console.print(plain(result.history.to_string(index=False, float_format=lambda v: f"{v:.4f}"),
                            newlines=True), soft_wrap=True)
    console.print(f"best epoch {result.best_epoch} (validation NT-Xent {result.best_val_loss:.4f}); run: "
                  f"{plain(cfg.out)}; fine-tune with: medgap finetune --backbone {plain(cfg.backbone)} --init "
                  f"pretrain:{plain(cfg.out)} ...", soft_wrap=True)
    return EXIT_OK


config_command(
    app, PretrainConfig, _run, name="pretrain",
    help="Pretrain a backbone on ultrasound videos with USCL's semi-supervised contrastive learning (mixed "
         "frame pairs, NT-Xent + cross-entropy on labelled videos); the run initialises medgap finetune --init "
         "pretrain:RUN_DIR.",
    epilog=("Examples:\n\n"
            "  medgap pretrain --videos MANIFEST.csv --filter modality=pocus_video --out runs/uscl\n\n"
            "  medgap pretrain --videos clips/ --backbone resnet18 --image-size 224 --epochs 300 --out runs/uscl\n\n"
            "  medgap finetune --data MANIFEST.csv --init pretrain:runs/uscl --out runs/ft\n\n"
            "Rerunning the same command resumes from last.ckpt. See docs/pretraining.md."),
)
