"""The training progress bar of ``medgap finetune``: Lightning's rich bar on stderr (stdout stays for results),
counting epochs from 1 to the real total (Lightning's own shows ``Epoch 2/2`` in the last of 3 epochs).

Imports Lightning: import this module only on the training path."""

from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar


class EpochProgressBar(RichProgressBar):
    """``Epoch 3/3`` in the last of 3 epochs, drawn on stderr."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("console_kwargs", {})
        kwargs["console_kwargs"] = {"stderr": True, **kwargs["console_kwargs"]}
        super().__init__(**kwargs)

    def _get_train_description(self, current_epoch: int) -> str:
        description = f"Epoch {current_epoch + 1}"
        max_epochs = self.trainer.max_epochs
        if max_epochs is not None and max_epochs >= 0:
            description += f"/{max_epochs}"
        if len(self.validation_description) > len(description):  # as Lightning: no flicker between the two bars
            description = f"{description:{len(self.validation_description)}}"
        return description
