"""A Ray Tune callback that advances a tqdm bar per finished trial. Imported only when Ray is there; the bar lives
in this module (Tune pickles its callbacks by reference to this importable class, never the bar)."""

from __future__ import annotations

from typing import Any

from ray import tune

BAR: list[Any] = []


class TrialProgress(tune.Callback):
    def on_trial_complete(self, iteration, trials, trial, **info):  # noqa: ANN001
        for bar in BAR:
            bar.update(1)

    def on_trial_error(self, iteration, trials, trial, **info):  # noqa: ANN001
        for bar in BAR:
            bar.update(1)
