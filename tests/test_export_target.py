"""Training never destroys a model it did not make: export goes to the run directory unless told
otherwise, and a directory holding another model needs `export.overwrite`."""

from __future__ import annotations

import json

import pytest

from carousel.cli import main
from carousel.errors import UserError
from carousel.training.config import load_config
from carousel.training.export import check_export_target, export_directory
from tests.conftest import TINY_CONFIG


def _model_dir(path, run_dir):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "card.json").write_text(json.dumps({"config": {"run_dir": str(run_dir)}}))
    return path


def test_the_default_export_is_inside_the_run_directory(tmp_path):
    config = load_config(TINY_CONFIG, [f"run_dir={tmp_path / 'run'}"])
    assert export_directory(config) == tmp_path / "run" / "model"


def test_a_model_another_run_exported_is_refused_unless_overwrite(tmp_path):
    shipped = _model_dir(tmp_path / "models" / "es-en", run_dir="runs/somebody-else")
    overrides = [f"run_dir={tmp_path / 'run'}", f"export.dir={shipped}"]
    with pytest.raises(UserError, match="did not export.*export.overwrite=true"):
        check_export_target(load_config(TINY_CONFIG, overrides))
    check_export_target(load_config(TINY_CONFIG, [*overrides, "export.overwrite=true"]))  # asked for: allowed


def test_a_directory_without_a_card_is_refused_and_this_runs_own_export_is_replaced(tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text("{}")
    with pytest.raises(UserError):
        check_export_target(load_config(TINY_CONFIG, [f"run_dir={tmp_path / 'run'}", f"export.dir={bare}"]))
    own = _model_dir(tmp_path / "run" / "model", run_dir=tmp_path / "run")
    check_export_target(load_config(TINY_CONFIG, [f"run_dir={tmp_path / 'run'}", f"export.dir={own}"]))


def test_train_refuses_before_training(tmp_path, capsys):
    shipped = _model_dir(tmp_path / "models" / "es-en", run_dir="runs/other")
    before = (shipped / "card.json").read_bytes()
    code = main(["train", "--config", str(TINY_CONFIG), "--set", f"run_dir={tmp_path / 'run'}",
                 "--set", f"export.dir={shipped}"])
    assert code == 2 and "did not export" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before any training started
    assert (shipped / "card.json").read_bytes() == before
