"""Options declared once (issue 9, item 3): every command's options are exactly its config's fields, choices
are checked in one place with "did you mean", and ``--config FILE`` (a run's recorded config.json, or YAML)
reruns a run with identical results; options given on the command line override the file."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from medgap.cli import _COMMANDS, app
from medgap.cli._config import CONFIG_CLASSES, _specs, build_config
from medgap.cli.quality import QualityConfig

runner = CliRunner()


def _text(r) -> str:
    return " ".join(r.output.split())


def _click_commands() -> dict[str, object]:
    """Every command the user can run, by its name after `medgap` (a group's sub-commands as "group sub")."""
    import typer.main

    group = typer.main.get_command(app)
    commands = {}
    for name in _COMMANDS:
        with group.make_context("medgap", [name, "--help"], resilient_parsing=True) as ctx:
            command = group.load_command(ctx, name)
            subs = getattr(command, "commands", None)
            if subs:
                commands.update({f"{name} {sub}": c for sub, c in subs.items()})
            else:
                commands[name] = command
    return commands


def test_every_registered_config_is_a_command():
    assert set(CONFIG_CLASSES) <= set(_click_commands())


@pytest.mark.parametrize("name", sorted(_click_commands()))
def test_every_option_is_one_config_field(name):
    command = _click_commands()[name]
    assert name in CONFIG_CLASSES, f"medgap {name} declares its options by hand, not from a config"
    cls, exclude = CONFIG_CLASSES[name]
    specs = _specs(cls, exclude)
    assert {p.name for p in command.params} - {"help"} == {s.name for s in specs} | {"config"}
    for s in specs:  # every option says what it does
        assert s.field.metadata.get("help"), f"{name}: field {s.name} has no help"


@pytest.fixture()
def collection(tmp_path):
    rng = np.random.default_rng(5)
    for group, size in (("ct", 40), ("mr", 56), ("us", 48)):
        folder = tmp_path / "data" / group
        folder.mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (size, size), dtype=np.uint8))
    return tmp_path / "data"


def test_study_config_json_reruns_the_study_identically(collection, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    r = runner.invoke(app, ["study", str(collection), "--out", str(first), "--metric", "brisque", "--metric",
                            "piqe", "--reference", "mr", "--video-stride", "2", "--format", "csv"])
    assert r.exit_code == 0, r.output
    recorded = json.loads((first / "config.json").read_text())
    assert recorded["quality"]["metrics"] == ["brisque", "piqe"] and recorded["quality"]["video_stride"] == 2
    r = runner.invoke(app, ["study", "--config", str(first / "config.json"), "--out", str(second)])
    assert r.exit_code == 0, r.output
    again = json.loads((second / "config.json").read_text())
    assert {**again, "out": None, "quality": {**again["quality"], "out": None}} == \
        {**recorded, "out": None, "quality": {**recorded["quality"], "out": None}}
    a, b = (pd.read_csv(d / "scores.csv").sort_values("item_id").reset_index(drop=True) for d in (first, second))
    pd.testing.assert_frame_equal(a, b)
    assert json.loads((first / "comparison.json").read_text()) == json.loads((second / "comparison.json").read_text())


def test_options_on_the_command_line_override_the_file(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text(yaml.safe_dump({"paths": ["a", "b"], "metrics": ["piqe"], "video_stride": 3, "workers": 2}))
    cfg = build_config(QualityConfig, {"video_stride": 5, "metrics": ["brisque"]}, {"video_stride"}, path)
    assert cfg.video_stride == 5  # given: wins
    assert cfg.metrics == ["piqe"] and cfg.workers == 2  # not given: the file's
    assert [p.name for p in cfg.paths] == ["a", "b"] and cfg.format is None  # absent from the file: default


def test_a_typo_in_a_config_file_is_refused_with_a_close_match(tmp_path, collection):
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"paths": [str(collection)], "metrcs": ["piqe"]}))
    r = runner.invoke(app, ["quality", "--config", str(path), "--out", str(tmp_path / "s.parquet")])
    assert r.exit_code == 2, r.output
    assert "unknown option 'metrcs'. Did you mean 'metrics'?" in _text(r)
    assert not (tmp_path / "s.parquet").exists()
    path.write_text("{not json")
    r = runner.invoke(app, ["quality", "--config", str(path)])
    assert r.exit_code == 2 and "not a valid JSON file" in _text(r), r.output


def test_a_choice_is_checked_in_one_place_for_cli_file_and_library(tmp_path):
    from medgap._options import ConfigValueError, check_choices
    from medgap.train.config import FinetuneConfig

    with pytest.raises(ConfigValueError, match=r"--balance 'clas' is not one of none, patient, class\. Did you "
                                               r"mean 'class'\?"):
        check_choices(FinetuneConfig(data="d", out="o", balance="clas"))
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"data": "d", "out": str(tmp_path / "o"), "strategy": "Full"}))
    r = runner.invoke(app, ["finetune", "--config", str(path)])
    assert r.exit_code == 2 and "Did you mean 'full'?" in _text(r), r.output


def test_required_options_may_come_from_the_file_and_are_named_when_missing(tmp_path):
    r = runner.invoke(app, ["finetune", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "missing --data" in _text(r), r.output


@pytest.fixture()
def manifest(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for c, shift in (("a", 0), ("b", 60)):
        for i in range(4):
            f = tmp_path / "img" / f"{c}{i}.png"
            f.parent.mkdir(exist_ok=True)
            cv2.imwrite(str(f), np.clip(rng.integers(0, 190, (24, 24, 3)) + shift, 0, 255).astype(np.uint8))
            rows.append({"path": f"img/{f.name}", "label": c, "group_id": f"{c}{i}"})
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    return tmp_path / "m.csv"


def test_finetune_config_json_reruns_the_run_identically(manifest, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    r = runner.invoke(app, ["finetune", "--data", str(manifest), "--out", str(first), "--init", "scratch",
                            "--strategy", "full", "--folds", "2", "--epochs", "2", "--image-size", "32",
                            "--batch-size", "4", "--seed", "7", "--no-augment"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["finetune", "--config", str(first / "config.json"), "--out", str(second)])
    assert r.exit_code == 0, r.output
    recorded, again = (json.loads((d / "config.json").read_text()) for d in (first, second))
    assert {**recorded, "out": None} == {**again, "out": None} and recorded["seed"] == 7
    a, b = (pd.read_csv(d / "predictions.csv") for d in (first, second))
    pd.testing.assert_frame_equal(a, b)


def test_every_config_field_round_trips_through_its_json(tmp_path):
    from medgap._options import from_dict, to_dict
    from medgap.cli.study import StudyConfig

    cfg = StudyConfig(QualityConfig(paths=[tmp_path], groups=["a=b"], metrics=["niqe"], workers=2, format="csv"),
                      out=tmp_path / "run", reference="a")
    back = from_dict(StudyConfig, json.loads(json.dumps(to_dict(cfg))))
    assert dataclasses.asdict(back) == dataclasses.asdict(cfg)
