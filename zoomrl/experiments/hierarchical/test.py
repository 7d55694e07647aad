"""Testing the hierarchical agent: the greedy agent, the random agent and the oracle on the same images, then the
evaluation (:func:`~zoomrl.experiments.dqn_test.test_family` runs it; this module holds what is the family's own).

Outputs in ``output_dir``: ``detections.json`` (docs/detections_format.md), ``results.json`` (every metric of
:mod:`zoomrl.eval.detection` for the agent and the baselines, the agent's AP by each detection score, with the
configuration, checkpoint and data), ``pr_curve.png``, ``windows_per_object.png``, ``recall_vs_windows.png`` and,
with ``bool_draw``, one picture per image in ``pictures/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from zoomrl.agents.dqn.agent import agent_outputs
from zoomrl.envs.zoom import NUM_ACTIONS
from zoomrl.envs.zoom_runs import greedy_policy, run_records
from zoomrl.experiments.dqn_test import ScoredTester, test_family
from zoomrl.experiments.hierarchical.config import Config
from zoomrl.experiments.hierarchical.train import HierarchicalTrainee

Log = Callable[[str], None]


class HierarchicalTester(ScoredTester):
    """The hierarchical family's test: the greedy agent over the zoom hierarchy, its records rescored by every
    detection score it can give (:class:`~zoomrl.experiments.dqn_test.ScoredTester`), and the oracle at two zoom
    scales (the upper bounds)."""

    trainee = HierarchicalTrainee
    # Another hierarchy (scale) gives the actions other children; another step limit is only a budget.
    trained_fields = ("scale_subregion",)
    noted_fields = {"number_of_steps": "testing with {asked} steps per search; the network was trained with {trained}"}

    def label(self, config: Config) -> str:
        return config.variant

    def num_actions(self, config: Config) -> int:
        return NUM_ACTIONS

    run_records = staticmethod(run_records)  # type: ignore[assignment]

    def agent_records(
        self, images: Any, store: Any, config: Config, agent: Any, features: Any, progress: Any, checkpoint: Path
    ) -> Any:
        records = run_records(
            images, store, config, greedy_policy, config.test_batch, features, agent_outputs(agent), progress=progress
        )
        return self.scored_records(records, images, store, config, features, checkpoint)

    def oracles(self, oracle: Callable[..., Any]) -> dict[str, Any]:
        return {"upper_bound": {f"scale_{s:g}": oracle(scale=s) for s in (3 / 4, 1 / 2)}}

    def meta(self, images: Sequence[Any], config: Config, seconds: float) -> dict[str, Any]:
        return {"images_per_second": round(len(images) / max(seconds, 1e-9), 3)}

    def curves(self, results: Mapping[str, Any]) -> dict[str, Any]:
        named = {"agent": results["agent"], "whole image": results["whole_image"]}
        if "random" in results:
            named["random"] = results["random"]
            named.update({f"upper bound {k[6:]}": v for k, v in results["upper_bound"].items()})
        return named

    def plots(self, results: Mapping[str, Any], curves: Mapping[str, Any], out: Path, config: Config) -> None:
        from zoomrl.eval.plots import plot_recall_vs_windows, plot_windows_per_object

        plot_recall_vs_windows(curves, out / "recall_vs_windows.png")
        plot_windows_per_object(results["agent"], out / "windows_per_object.png")


TESTER = HierarchicalTester()
adopt_trained_config = TESTER.adopt_trained_config


def test(
    config: Config, data: Sequence[str | Path], image_set: str | None, checkpoint: Any, output_dir: Any, **kw: Any
) -> dict[str, Any]:
    """:func:`~zoomrl.experiments.dqn_test.test_family` of the hierarchical family: test a trained agent (and the
    baselines), write the outputs listed in the module doc, return the results (``features`` replaces the VGG-16
    feature model of ``config.variant``: tests use a cheap one)."""
    return test_family(TESTER, config, data, image_set, checkpoint, output_dir, **kw)
