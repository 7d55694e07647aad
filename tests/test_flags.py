"""Flags made from configuration dataclasses (``zoomrl.experiments.flags``), renamed flags, and the DQN flags that
the hierarchical and active families now take from one place."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from zoomrl.core.config import ConfigBase
from zoomrl.experiments.flags import DQN_TRAIN_FLAGS, add_config_flags, field_docs, renamed_flag


@dataclass
class Toy(ConfigBase):
    rate: float = 0.5
    """How fast (per step). The rest is not help."""
    units: int = 8
    """Units, as in Wang et al. 2016. Not this."""
    bc_epochs: int = 0
    on: bool = False
    """Switch."""
    limit: float | None = None
    """A float that may stay unset."""


PRESETS = {"base": {}, "big": {"units": 64, "on": True}}


def _parser(preset: str = "big") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    assert add_config_flags(p, Toy, ("rate", "units", "bc_epochs", "on", "limit"), PRESETS, preset) == (
        "rate",
        "units",
        "bc_epochs",
        "on",
        "limit",
    )
    return p


def test_fields_become_typed_flags_that_default_to_not_given():
    p = _parser()
    assert vars(p.parse_args([])) == {"rate": None, "units": None, "bc_epochs": None, "on": None, "limit": None}
    args = p.parse_args(["--rate", "0.25", "--units", "3", "--bc-epochs", "0", "--no-on", "--limit", "0.7"])
    assert (args.rate, args.units, args.bc_epochs, args.on, args.limit) == (0.25, 3, 0, False, 0.7)
    assert p.parse_args(["--on"]).on is True
    for bad in (["--units", "0"], ["--bc-epochs", "-1"], ["--rate", "x"]):  # units positive, bc_epochs may be 0
        with pytest.raises(SystemExit) as exc:
            p.parse_args(bad)
        assert exc.value.code == 2


def test_help_is_the_fields_first_sentence_and_the_value_in_force():
    text = " ".join(_parser("big").format_help().split())
    assert "How fast (per step) (default: the preset's; big: 0.5)" in text
    assert "Units, as in Wang et al. 2016 (default: the preset's; big: 64)" in text
    assert "Switch (default: the preset's; big: True)" in text
    assert "bc epochs (default: the preset's; big: 0)" in text  # no documentation: the field's name
    assert "big: 8" not in text and "Not this" not in text
    assert "(default: the preset's; base: 8)" in " ".join(_parser("base").format_help().split())
    assert field_docs(Toy)["limit"] == "A float that may stay unset."
    with pytest.raises(ValueError, match="no field 'nope'"):
        add_config_flags(argparse.ArgumentParser(), Toy, ("nope",), PRESETS, "base")


def test_a_renamed_flag_keeps_working_with_a_note(capsys):
    p = argparse.ArgumentParser()
    p.add_argument("--data", dest="dataset", choices=("a", "b"), default=None)
    renamed_flag(p, "--dataset", "--data", "dataset", choices=("a", "b"))
    assert p.parse_args([]).dataset is None and capsys.readouterr().err == ""
    assert p.parse_args(["--data", "b"]).dataset == "b" and capsys.readouterr().err == ""
    assert p.parse_args(["--dataset", "a"]).dataset == "a"
    assert capsys.readouterr().err == "note: --dataset is deprecated, use --data\n"
    with pytest.raises(SystemExit):
        p.parse_args(["--dataset", "c"])  # the old spelling checks its value as the new one does
    assert "--dataset" not in p.format_help()


@pytest.mark.parametrize("family", ["hierarchical", "active"])
def test_both_dqn_families_take_the_same_dqn_flags_into_their_config(family):
    import importlib

    cli = importlib.import_module(f"zoomrl.experiments.{family}.cli")
    argv = [
        "--preset",
        "paper",
        "--learning-rate",
        "0.003",
        "--train-every",
        "2",
        "--minibatch",
        "7",
        "--replay-size",
        "4000",
        "--hidden-units",
        "5",
        "--target-update-every",
        "9",
        "--double-dqn",
        "--dueling",
        "--n-step",
        "3",
        "--demo-ratio",
        "0.25",
        "--margin-weight",
        "0.5",
        "--bc-epochs",
        "1",
        "--descriptor-scale",
        "0.2",
    ]
    config = cli.make_run_config(cli.build_parser("train").parse_args(argv))
    assert {name: getattr(config, name) for name in DQN_TRAIN_FLAGS} == {
        "learning_rate": 0.003,
        "train_every": 2,
        "minibatch": 7,
        "replay_size": 4000,
        "hidden_units": 5,
        "target_update_every": 9,
        "double_dqn": True,
        "dueling": True,
        "n_step": 3,
        "demo_ratio": 0.25,
        "margin_weight": 0.5,
        "bc_epochs": 1,
        "descriptor_scale": 0.2,
    }
    plain = cli.make_run_config(cli.build_parser("train").parse_args(["--preset", "paper"]))
    assert plain.learning_rate == 1e-6 and plain.dueling is False  # not given: the preset's
    assert "paper: 1e-06" in cli.build_parser("train").format_help()


def test_one_vocabulary_with_the_old_names_kept(capsys):
    """glimpse and patchdrop take ``--data`` / ``--class-object`` / ``--draw-max`` as the other families do;
    ``--dataset``, ``--voc-class`` and ``--max-pictures`` still work, each with one line of note."""
    from zoomrl.experiments.glimpse.cli import build_parser as glimpse_parser
    from zoomrl.experiments.patchdrop.cli import build_parser as patchdrop_parser

    new = glimpse_parser("train").parse_args(["--data", "mnist", "--class-object", "raccoon", "--draw-max", "3"])
    assert (new.dataset, new.voc_class, new.draw_max) == ("mnist", "raccoon", 3) and capsys.readouterr().err == ""
    old = glimpse_parser("train").parse_args(["--dataset", "mnist", "--voc-class", "raccoon"])
    assert (old.dataset, old.voc_class) == ("mnist", "raccoon")
    assert capsys.readouterr().err.splitlines() == [
        "note: --dataset is deprecated, use --data",
        "note: --voc-class is deprecated, use --class-object",
    ]
    for argv in (["--data", "cifar10", "--draw-max", "4"], ["--dataset", "cifar10", "--max-pictures", "4"]):
        args = patchdrop_parser("test").parse_args(argv)
        assert (args.dataset, args.draw_max) == ("cifar10", 4)
    assert capsys.readouterr().err.count("is deprecated") == 2
    assert "--data " in patchdrop_parser("train").format_help()
    assert "--dataset" not in glimpse_parser("train").format_help()
