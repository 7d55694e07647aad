"""PatchDrop's validation split and ``--patch-budget`` (issue 20), in plain NumPy: the held-out digits, the ``train``
and ``val`` splits of a configuration, the keep threshold chosen on a validation curve, the greedy policy at a
threshold, and the configuration's errors. The test command's ``finetuned_budget`` row, recomputed by hand on a
trained run: ``tests/test_patchdrop_train.py``.

Mutations tried by hand, and the test that caught each: ``load_for`` holding out single canvases rather than
digits, and the ``val`` split drawn from the test digits: ``test_train_and_val_split_the_training_canvases``; ``>``
for ``>=`` in ``greedy_actions``: ``test_greedy_actions_at_a_threshold``; the test scoring the budget row at 0.5
whatever the choice: ``test_resume_continues_after_finished_stages_then_test``.
"""

import numpy as np
import pytest

from zoomrl.agents.patchdrop.evaluate import THRESHOLDS, pick_threshold
from zoomrl.agents.patchdrop.patches import greedy_actions
from zoomrl.core.config import ConfigError
from zoomrl.data.patch_digits import held_out, load_for
from zoomrl.experiments.patchdrop.config import make_config


def test_held_out_keeps_the_canvases_of_a_digit_together():
    groups = np.arange(40) // 4  # 10 digits, 4 canvases each
    mask = held_out(groups, 0.3, seed=5)
    held = np.unique(groups[mask])
    assert len(held) == 3 and mask.sum() == 12  # round(0.3 * 10) digits, all 4 canvases of each
    assert not set(held) & set(groups[~mask])
    np.testing.assert_array_equal(mask, held_out(groups, 0.3, seed=5))  # the data seed fixes it
    assert any(not np.array_equal(mask, held_out(groups, 0.3, seed=s)) for s in range(6, 12))
    assert held_out(groups, 0.01, seed=0).sum() == 4  # at least one digit
    with pytest.raises(ValueError, match="leaves no training image"):
        held_out(np.arange(2), 0.5 + 0.4, seed=0)


def test_train_and_val_split_the_training_canvases():
    whole = make_config("tiny", train_per_digit=2)
    cfg = whole.replace(val_fraction=0.25)
    x, y = load_for(whole, "train")
    xt, yt = load_for(cfg, "train")
    xv, yv = load_for(cfg, "val")
    assert len(x) == 64 and len(xv) == 16 and len(xt) == 48  # 8 of 32 digits, 2 canvases each
    # together they are the training canvases, each once, in their order
    mask = held_out(np.arange(64) // 2, 0.25, cfg.data_seed)
    np.testing.assert_array_equal(xv, x[mask])
    np.testing.assert_array_equal(xt, x[~mask])
    np.testing.assert_array_equal(np.concatenate([yt, yv]), np.concatenate([y[~mask], y[mask]]))
    xs, _ = load_for(cfg, "test")
    assert not any(np.array_equal(a, b) for a in xv for b in xs)  # val never comes from the test digits
    np.testing.assert_array_equal(xs, load_for(whole, "test")[0])  # and the test split does not move
    with pytest.raises(ValueError, match="no validation split"):
        load_for(whole, "val")
    with pytest.raises(ValueError, match="train, val or test"):
        load_for(cfg, "dev")


def test_pick_threshold_by_hand():
    curve = [
        {"threshold": 0.3, "accuracy": 97.0, "mean_patches": 10.0},
        {"threshold": 0.5, "accuracy": 96.0, "mean_patches": 8.5},
        {"threshold": 0.6, "accuracy": 95.5, "mean_patches": 8.0},
        {"threshold": 0.7, "accuracy": 95.5, "mean_patches": 7.2},
        {"threshold": 0.9, "accuracy": 90.0, "mean_patches": 5.0},
    ]
    # at most 8: 0.6, 0.7 and 0.9 fit; 0.6 and 0.7 tie on accuracy, the fewer patches wins
    assert pick_threshold(curve, 8.0)["threshold"] == 0.7
    assert pick_threshold(curve, 9.0)["threshold"] == 0.5
    assert pick_threshold(curve, 16.0)["threshold"] == 0.3
    assert pick_threshold(curve, 4.0)["threshold"] == 0.9  # none fits: the fewest patches
    with pytest.raises(ValueError, match="no threshold"):
        pick_threshold([], 8.0)
    assert THRESHOLDS[0] == 0.05 and THRESHOLDS[-1] == 0.95 and 0.5 in THRESHOLDS and len(THRESHOLDS) == 19


def test_greedy_actions_at_a_threshold():
    p = np.array([[0.2, 0.5, 0.6, 0.9]])
    np.testing.assert_array_equal(greedy_actions(p), [[0, 1, 1, 1]])
    np.testing.assert_array_equal(greedy_actions(p, 0.6), [[0, 0, 1, 1]])
    np.testing.assert_array_equal(greedy_actions(p, 0.95), [[0, 0, 0, 0]])


def test_configuration_errors():
    with pytest.raises(ConfigError, match="patch_budget=8 .*needs val_fraction > 0"):
        make_config("tiny", patch_budget=8.0)
    with pytest.raises(ConfigError, match="val_fraction"):
        make_config("tiny", val_fraction=0.7)
    with pytest.raises(ConfigError, match="patch_budget"):
        make_config("tiny", val_fraction=0.1, patch_budget=17.0)
    cfg = make_config("fast2")
    assert (cfg.val_fraction, cfg.patch_budget) == (0.1, 8.0)
