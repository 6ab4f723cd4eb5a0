"""A manifest must say who the patients are (issue 9, item 5): without the patient column a run is refused
before anything is written, unless the user says that each file is its own patient."""

from __future__ import annotations

import pandas as pd
import pytest

from medgap.io import CollectionError
from medgap.train import FinetuneConfig, run_finetune


def _manifest_with_group_column(tree, tmp_path):
    """The patient id is in a column called ``group`` (as in the held-out POCUS manifest of the issue)."""
    rows = [{"path": str(f), "label": f.parent.name, "group": f"{f.parent.name}-p{int(f.stem) % 4}"}
            for f in sorted(tree.glob("*/*.png"))]
    csv = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def _tiny(data, out, **kw) -> FinetuneConfig:
    return FinetuneConfig(data=data, out=out, init="scratch", folds=2, epochs=1, image_size=32, batch_size=8, **kw)


def test_patient_column_under_another_name_is_refused_unless_each_file_is_a_patient(tiny_tree, tmp_path):
    csv = _manifest_with_group_column(tiny_tree, tmp_path)
    refused = tmp_path / "refused"
    with pytest.raises(CollectionError, match=r"no patient column 'group_id'; its columns are path, label, group\."
                                              r".*--group-column.*--each-file-is-a-patient"):
        run_finetune(_tiny(csv, refused), log=lambda s: None)
    assert not refused.exists()

    per_file = tmp_path / "per_file"
    run_finetune(_tiny(csv, per_file, each_file_is_a_patient=True), log=lambda s: None)
    assert pd.read_csv(per_file / "split.csv").group_id.nunique() == 24
