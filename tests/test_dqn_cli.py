"""The value-based families' command line (``zoomrl/experiments/dqn_cli.py``): flags generated from the
configuration dataclasses, one source of defaults (the dataclass, then the preset, then a script's edited constant,
then the flag), and the top-level scripts' constants working as documented."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from zoomrl.experiments.active import cli as active
from zoomrl.experiments.hierarchical import cli as hierarchical

REPO = Path(__file__).resolve().parents[1]


def _config(cli, command: str, argv: list[str], constants: dict | None = None):
    return cli.make_run_config(cli.build_parser(command, constants).parse_args(argv))


@pytest.mark.parametrize("cli", [hierarchical, active])
@pytest.mark.parametrize("command", ["train", "test"])
def test_the_class_has_one_default_the_demo_sets(cli, command):
    """Issue 16: the dataclass said ``aeroplane`` and the command line ``seven``; now both say ``seven``."""
    assert cli.FLAGS.config_cls().class_object == "seven"
    assert _config(cli, command, []).class_object == "seven"
    assert _config(cli, command, ["--class-object", "cat"]).class_object == "cat"
    assert "(default: the preset's; paper: 'seven')" in " ".join(cli.build_parser(command).format_help().split())


def test_help_shows_the_values_of_the_preset_given(capsys):
    """``--preset fast2 --help`` shows fast2's values (4x4 pooling, epsilon from 0.3), not the default preset's;
    parsing with a rebuilt parser gives what the default parser gives, ``--model`` included. Mutation caught: the
    help made for the default preset whatever ``--preset`` says (the old behaviour)."""
    for argv, expected in (([], "paper: 7"), (["--preset", "fast2"], "fast2: 4"), (["--preset", "tiny"], "tiny: 7")):
        with pytest.raises(SystemExit):
            hierarchical.build_parser("train").parse_args([*argv, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert (
            text.split("--descriptor-pool DESCRIPTOR_POOL ")[1]
            .split(" --")[0]
            .endswith(f"(default: the preset's; {expected})")
        )
    argv = ["--preset", "fast2", "--model", "pool45_crops", "--epochs", "3", "--descriptor-pool", "2"]
    rebuilt = vars(hierarchical.build_parser("train").parse_args(argv))
    direct = vars(hierarchical.FLAGS.build_parser("train", None, "fast2").parse_args(argv))
    assert rebuilt == direct and rebuilt["model"] == "pool45_crops" and rebuilt["descriptor_pool"] == 2
    config = hierarchical.make_run_config(hierarchical.build_parser("train").parse_args(argv[:4]))
    assert config.descriptor_pool == 4 and config.epsilon_start == 0.3
    active_text = " ".join(active.build_parser("train").format_help().split())
    assert "(default: the preset's; paper: 'seven')" in active_text


@pytest.mark.parametrize("script", ["image_zooms_training.py", "pool45_crops_testing.py"])
def test_a_scripts_constants_left_as_shipped_leave_the_preset_and_the_dataclass_in_force(script):
    constants = runpy.run_path(str(REPO / script), run_name="x")
    command = "train" if "training" in script else "test"
    assert constants["CLASS_OBJECT"] == "seven" and constants["NUMBER_OF_STEPS"] == 10
    config = _config(hierarchical, command, ["--preset", "tiny"], constants)
    assert (config.class_object, config.number_of_steps, config.scale_subregion) == ("seven", 4, 0.75)
    args = hierarchical.build_parser(command, constants).parse_args([])
    assert args.model_dir == constants["MODEL_DIR"] and args.image_set == constants["IMAGE_SET"]
    assert args.model == "image_zooms"  # the script passes its MODEL beside its constants; not here


def test_an_edited_constant_is_the_flags_default_and_help_says_so():
    constants = {"CLASS_OBJECT": "aeroplane", "SCALE_SUBREGION": 1 / 2, "FORCE_TRIGGER": False, "MODEL": "pool45_crops"}
    config = _config(hierarchical, "train", ["--preset", "tiny"], constants)
    assert (config.class_object, config.scale_subregion, config.force_trigger) == ("aeroplane", 0.5, False)
    assert config.variant == "pool45_crops"
    flagged = _config(hierarchical, "train", ["--class-object", "cat", "--scale-subregion", "3/4"], constants)
    assert (flagged.class_object, flagged.scale_subregion) == ("cat", 0.75)  # a flag beats the constant
    text = " ".join(hierarchical.build_parser("train", constants).format_help().split())
    assert "(default: 'aeroplane')" in text and "(default: 0.5)" in text


def test_data_constant_and_flag():
    args = hierarchical.build_parser("train", {"DATA": ["a", "b"]}).parse_args([])
    assert hierarchical.data_roots(args) == ["a", "b"]
    args = hierarchical.build_parser("train", {"DATA": ["a"]}).parse_args(["--data", "c"])
    assert hierarchical.data_roots(args) == ["c"]
    assert active.data_roots(active.build_parser("test").parse_args([]))[0].endswith("demo")


def test_generated_flags_carry_the_fields_help_and_choices(capsys):
    text = " ".join(hierarchical.build_parser("train").format_help().split())
    assert "--train-paint {truth,window} What training paints after a trigger" in text
    assert "--scale-subregion SCALE_SUBREGION Child size relative to its parent" in text
    with pytest.raises(SystemExit) as exc:
        hierarchical.build_parser("test").parse_args(["--score", "best"])
    assert exc.value.code == 2 and "invalid choice: 'best'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        hierarchical.build_parser("train").parse_args(["--scale-subregion", "1"])
    assert "such as 0.75 or 3/4" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        active.build_parser("train").parse_args(["--features", "resnet"])


@pytest.mark.parametrize(
    ("cli", "train_only", "test_only"),
    [
        (hierarchical, ["--train-paint", "window", "--force-trigger", "--learning-rate", "1"], ["--score", "auto"]),
        (active, ["--state-steps", "--n-step", "2"], ["--checkpoint", "x"]),
    ],
)
def test_training_flags_are_refused_at_test_time_and_the_reverse(cli, train_only, test_only, capsys):
    cli.build_parser("train").parse_args(train_only)
    cli.build_parser("test").parse_args(test_only)
    for command, argv in (("test", train_only), ("train", test_only)):
        with pytest.raises(SystemExit):
            cli.build_parser(command).parse_args(argv)
        assert "unrecognized arguments" in capsys.readouterr().err
