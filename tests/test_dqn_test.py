"""The value-based families' shared test skeleton (:mod:`zoomrl.experiments.dqn_test`): which saved fields a test
adopts and which stay the command line's, the hierarchical family's refusal of another hierarchy, and one run of the
skeleton without baselines. Expected values are written out by hand.

Mutations tried by hand, each caught here:

* :meth:`DQNTester.adopt_trained_config` taking every saved field (not only ``model_fields()``):
  ``test_testing_adopts_the_model_fields_only``;
* the same not adopting at all (``changes = {}``): ``test_testing_adopts_the_model_fields_only``;
* :meth:`DQNTester.adopt_trained_config` not calling ``check_saved``, or ``check_saved`` comparing no
  ``trained_fields`` or ``noted_fields``: ``test_another_hierarchy_is_refused_...``;
* ``test_family`` running the random baseline with ``baselines=False`` (``if True:``):
  ``test_without_baselines_only_the_agent_and_the_whole_image_are_reported``.
"""

import json

import pytest

from conftest import TinyFeatures, square_task, write_voc
from zoomrl.agents.dqn.checkpoint import CheckpointError
from zoomrl.experiments.active import config as active_config
from zoomrl.experiments.active.test import TESTER as ACTIVE
from zoomrl.experiments.dqn_test import saved_config
from zoomrl.experiments.hierarchical import config as hierarchical_config
from zoomrl.experiments.hierarchical.test import TESTER as HIERARCHICAL


def _save(folder, config):
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    return folder / "epoch_1.weights.h5"


@pytest.mark.parametrize(
    "tester, make, model, test_time",
    [
        # trained with 48 hidden units and history 2 (tiny: 64, 4); tested with another batch, seed and score
        (HIERARCHICAL, hierarchical_config.make_config, {"hidden_units": 48, "history_length": 2},
         {"test_batch": 3, "seed": 11, "score": "trigger_advantage"}),
        # trained on pixels with the dueling head (tiny: VGG, none); tested with another budget, NMS, revisit rule
        (ACTIVE, active_config.make_config, {"features": "scratch", "dueling": True, "hidden_units": 32},
         {"test_steps": 7, "aar_nms": 0.5, "avoid_revisits": True, "seed": 11}),
    ],
)  # fmt: skip
def test_testing_adopts_the_model_fields_only(tmp_path, tester, make, model, test_time):
    trained = make("tiny", class_object="box", **model)
    checkpoint = _save(tmp_path, trained)
    asked = make("tiny", class_object="box", **test_time)
    logs = []
    used = tester.adopt_trained_config(asked, checkpoint, logs.append)
    for k, v in model.items():
        assert getattr(used, k) == v, k
    for k, v in test_time.items():
        assert getattr(used, k) == v, k  # a test-time field is the command line's, not the run's
    assert len(logs) == 1 and str(tmp_path / "config.json") in logs[0]
    assert all(f"{k}={v}" in logs[0] for k, v in model.items())
    # the same configuration again: nothing to adopt, nothing said, the very object back
    assert tester.adopt_trained_config(used, checkpoint, logs.append) is used and len(logs) == 1


def test_the_fields_a_trained_network_fixes_are_named_by_each_configuration_class():
    # the DQN's layers and IoU head, the descriptor's scale, the history, the run's region classifier; the
    # hierarchy's pooled descriptor
    dqn = {
        "hidden_units",
        "dropout",
        "dueling",
        "iou_weight",
        "descriptor_scale",
        "history_length",
        "region_scorer",
        "box_regression",
    }
    assert set(hierarchical_config.Config.model_fields()) == dqn | {"descriptor_pool"}
    box = {"features", "roi_max_side", "clip_preset"}
    moves = {"alpha", "fine_smaller", "fine_alpha", "context", "cross_width", "state_geometry", "state_steps"}
    assert set(active_config.Config.model_fields()) == dqn | box | moves


def test_without_a_saved_configuration_the_command_line_stands(tmp_path):
    asked = hierarchical_config.make_config("tiny", class_object="box")
    assert HIERARCHICAL.adopt_trained_config(asked, tmp_path / "w.weights.h5", print) is asked


def test_a_damaged_saved_configuration_names_its_file(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json"):
        saved_config(tmp_path / "epoch_1.weights.h5")


def test_another_hierarchy_is_refused_and_another_step_limit_is_said(tmp_path):
    make = hierarchical_config.make_config
    checkpoint = _save(tmp_path, make("tiny", class_object="box", scale_subregion=0.5, number_of_steps=4))
    refused = r"epoch_1.weights.h5: trained with --scale-subregion 0.5, this test asks for 0.75"
    with pytest.raises(CheckpointError, match=refused):
        HIERARCHICAL.adopt_trained_config(make("tiny", class_object="box", scale_subregion=0.75), checkpoint, print)
    logs = []
    asked = make("tiny", class_object="box", scale_subregion=0.5, number_of_steps=6)
    used = HIERARCHICAL.adopt_trained_config(asked, checkpoint, logs.append)
    assert used.number_of_steps == 6  # a budget, not the network: the test's own
    assert logs == ["note: testing with 6 steps per search; the network was trained with 4"]
    # the active family has no hierarchy: another step limit is silent there
    checkpoint = _save(tmp_path, active_config.make_config("tiny", class_object="box", number_of_steps=4))
    asked = active_config.make_config("tiny", class_object="box", number_of_steps=6)
    logs = []
    assert ACTIVE.adopt_trained_config(asked, checkpoint, logs.append).number_of_steps == 6 and logs == []


def test_without_baselines_only_the_agent_and_the_whole_image_are_reported(tmp_path):
    from zoomrl.experiments.active.test import test
    from zoomrl.experiments.active.train import train

    write_voc(tmp_path / "train", square_task(2, 0))
    write_voc(tmp_path / "test", square_task(2, 1), image_set="test")
    cfg = active_config.make_config("tiny", class_object="box", epochs=1)
    quiet = dict(features=TinyFeatures(), log=lambda m: None, show_progress=False)
    train(cfg, [tmp_path / "train"], "trainval", tmp_path / "m", **quiet)
    logs = []
    res = test(
        cfg, [tmp_path / "test"], "test", None, tmp_path / "r", model_dir=tmp_path / "m", baselines=False,
        **{**quiet, "log": logs.append},
    )  # fmt: skip
    assert "random" not in res and "oracle" not in res
    assert set(res["whole_image"]) == {"terminal_regions", "recall_vs_proposals"}
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    assert saved["n_images"] == 2 and saved["family"] == "active" and saved["n_objects"] == 2
    assert saved["checkpoint"] == str(tmp_path / "m" / "box" / "epoch_1.weights.h5")
    assert len(json.loads((tmp_path / "r" / "detections.json").read_text())["images"]) == 2
    assert {p.name for p in (tmp_path / "r").iterdir()} == {
        "results.json", "detections.json", "pr_curve.png", "recall_vs_proposals.png", "windows_per_object.png"
    }  # fmt: skip
    table = logs[logs.index(next(m for m in logs if m.startswith("recall vs boxes"))) - 1]
    assert "agent TR" in table and "whole image" in table and "random" not in table
    assert logs[-1].startswith("test: 2 images in ")
