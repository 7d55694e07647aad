"""Testing the active agent: the greedy agent, the random agent and the oracle on the same images, then both
detection sets (terminal regions and all attended regions, :mod:`zoomrl.eval.proposals`) through the project's
evaluation (:func:`~zoomrl.experiments.dqn_test.test_family` runs it; this module holds what is the family's own).

Outputs in ``output_dir``: ``detections.json`` (docs/detections_format.md, plus each search's ``start`` box),
``results.json`` (``terminal_regions`` and ``all_attended_regions``: every metric of
:func:`zoomrl.eval.detection.evaluate`; ``recall_vs_proposals``, and with a box regressor
``recall_vs_proposals_moved``, the same boxes moved; the detection score of each set, ``score`` and
``aar_score``, with the AP under every score beside it, ``agent_by_score`` and ``aar_by_score``; the baselines,
the random agent's with its boxes under the run's region models too, ``recall_vs_proposals_moved`` and, with a
region classifier, ``all_attended_regions``;
seconds per image; the configuration, checkpoint and data), ``pr_curve.png``, ``recall_vs_proposals.png`` (and
``recall_vs_proposals_moved.png`` with a box regressor),
``windows_per_object.png`` and, with ``bool_draw``, one picture per image of the box's path in ``pictures/``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from zoomrl.data.voc import VocImage
from zoomrl.envs.active import TRIGGER
from zoomrl.envs.active_runs import run_records, test_policy
from zoomrl.eval.detection import evaluate, has_refined, unrefined
from zoomrl.eval.proposals import attended_by_budget, attended_by_score, attended_records, recall_vs_proposals
from zoomrl.experiments.active.config import Config
from zoomrl.experiments.active.train import ActiveTrainee
from zoomrl.experiments.dqn_test import ScoredTester, ap_pair, test_family, validation_score

Log = Callable[[str], None]


def evaluate_active(
    records: Sequence[dict[str, Any]], nms_iou: float, aar_score: str = "trigger_q", vote_iou: float = 0.0
) -> dict[str, Any]:
    """Both detection sets and the proposal recall of a run's records, all attended regions scored by ``aar_score``
    (:data:`zoomrl.eval.proposals.ATTENDED_SCORES`) and voted at ``vote_iou``."""
    return {
        "terminal_regions": evaluate(records),
        "all_attended_regions": evaluate(attended_records(records, TRIGGER, nms_iou, aar_score, vote_iou)),
        "recall_vs_proposals": recall_vs_proposals(records),
    }


class ActiveTester(ScoredTester):
    """The active family's test: the greedy agent (revisit-free with ``avoid_revisits``) moving one box for up to
    ``test_steps`` actions per image, both detection sets (terminal regions scored by ``config.score``, all
    attended regions by ``config.aar_score``, each with every score's AP beside it), proposal recall, and one
    oracle."""

    trainee = ActiveTrainee

    def label(self, config: Config) -> str:
        return f"active ({config.features})"

    def num_actions(self, config: Config) -> int:
        return config.num_actions

    def opening(self, images: Sequence[VocImage], checkpoint: Path, config: Config) -> str:
        return (
            f"testing {checkpoint} on {len(images)} images, {self.n_objects(images, config)} "
            f"'{config.class_object}' objects ({config.features} features, {config.test_steps} steps per image)"
        )

    @staticmethod
    def n_objects(images: Sequence[VocImage], config: Config) -> int:
        return sum(len(im.boxes(config.class_object, include_difficult=False)) for im in images)

    run_records = staticmethod(run_records)  # type: ignore[assignment]

    def agent_records(
        self, images: Any, store: Any, config: Config, agent: Any, features: Any, progress: Any, checkpoint: Path
    ) -> Any:
        """The greedy agent's records; with ``region_scorer``, every visited window scored by the run's region
        classifier (``region_scorer.npz`` beside ``checkpoint``)."""
        from zoomrl.agents.dqn.agent import agent_outputs

        policy = test_policy(config)
        outputs = agent_outputs(agent)  # the Q-values, and the predicted IoU with the IoU head
        records = run_records(images, store, config, policy, config.test_batch, features, outputs, progress)
        return self.scored_records(records, images, store, config, features, checkpoint)

    def agent_results(self, records: Any, config: Config, checkpoint: Path, log: Log) -> tuple[Any, Any, dict]:
        """Terminal regions as :class:`~zoomrl.experiments.dqn_test.ScoredTester` scores them, and all attended
        regions under every score the records support (``aar_by_score``), the agent's by ``config.aar_score``
        (``auto``: the validation's choice, :func:`~zoomrl.experiments.dqn_test.validation_score`)."""
        by_score = attended_by_score(records, TRIGGER, config.aar_nms, vote_iou=config.aar_vote)
        if config.aar_score == "auto":
            chosen = validation_score(checkpoint, list(by_score), log, key="aar_score", flag="--aar-score")
            config = config.replace(aar_score=chosen)
        if config.aar_score not in by_score:
            raise ValueError(
                f"attended-region score '{config.aar_score}' is not available for {checkpoint} (its records can be "
                f"scored by {', '.join(by_score) or 'nothing'}); predicted_iou needs a network trained with "
                f"--iou-weight > 0, region_score one trained with --region-scorer"
            )
        config, records, results = super().agent_results(records, config, checkpoint, log)
        results["aar_score"] = config.aar_score
        results["aar_by_score"] = {name: ap_pair(ev) for name, ev in by_score.items()}
        if has_refined(records):
            plain = attended_by_score(unrefined(records), TRIGGER, config.aar_nms, vote_iou=config.aar_vote)
            results["unrefined_aar_by_score"] = {name: ap_pair(ev) for name, ev in plain.items()}
        agent = results["agent"]
        results["agent"] = {
            "terminal_regions": agent["terminal_regions"],
            "all_attended_regions": by_score[config.aar_score],
            "recall_vs_proposals": agent["recall_vs_proposals"],
        }
        # all attended regions within a budget of boxes per image (the first ones visited), beside the random agent's
        results["agent"]["aar_by_budget"] = self.aar_by_budget(records, config)
        moved = self.moved_recall(records)  # the same boxes moved by the regressor: what a detection there reports
        if moved is not None:
            results["agent"]["recall_vs_proposals_moved"] = moved
        return config, records, results

    def moved_recall(self, records: Any) -> dict[str, float] | None:
        return recall_vs_proposals(records, moved=True) if has_refined(records) else None

    @staticmethod
    def aar_by_budget(records: Any, config: Config) -> dict[str, dict[str, float]]:
        """The AAR APs (:func:`~zoomrl.eval.proposals.attended_by_budget`) under ``config.aar_score``, suppressed
        and voted as the full set."""
        by_budget = attended_by_budget(records, TRIGGER, config.aar_nms, config.aar_score, config.aar_vote)
        return {n: ap_pair(ev) for n, ev in by_budget.items()}

    def scored_baseline(
        self, records: Any, images: Sequence[VocImage], store: Any, config: Config, features: Any, checkpoint: Path
    ) -> dict[str, Any]:
        """The random agent's boxes under the run's region models, to tell what the agent's search adds to them:
        with a box regressor, the recall of its boxes moved (``recall_vs_proposals_moved``); with a region
        classifier, its attended regions scored by it, suppressed and voted as the agent's
        (``all_attended_regions``: R-CNN's head on the random agent's boxes)."""
        if not (config.region_scorer or config.box_regression):
            return {}
        scored = self.scored_records(copy.deepcopy(records), images, store, config, features, checkpoint)
        out: dict[str, Any] = {}
        moved = self.moved_recall(scored)
        if moved is not None:
            out["recall_vs_proposals_moved"] = moved
        if config.region_scorer:
            aar = attended_by_score(scored, TRIGGER, config.aar_nms, ["region_score"], config.aar_vote)
            out["all_attended_regions"] = aar["region_score"]
            out["aar_by_budget"] = self.aar_by_budget(scored, config.replace(aar_score="region_score"))
        return out

    def evaluate_agent(self, records: Any, config: Config) -> dict[str, Any]:
        # All attended regions come from agent_results, which evaluates them under every score once.
        return {"terminal_regions": evaluate(records), "recall_vs_proposals": recall_vs_proposals(records)}

    def baseline(self, records: Any) -> dict[str, Any]:
        return {"terminal_regions": evaluate(records), "recall_vs_proposals": recall_vs_proposals(records)}

    def oracles(self, oracle: Callable[..., Any]) -> dict[str, Any]:
        return {"oracle": oracle()}

    def meta(self, images: Sequence[VocImage], config: Config, seconds: float) -> dict[str, Any]:
        return {
            "family": "active",
            "n_objects": self.n_objects(images, config),
            "seconds_per_image": round(seconds / max(len(images), 1), 3),
        }

    def curves(self, results: Mapping[str, Any]) -> dict[str, Any]:
        agent = results["agent"]
        named = {"agent TR": agent["terminal_regions"], "agent AAR": agent["all_attended_regions"]}
        named["whole image"] = results["whole_image"]["terminal_regions"]
        named.update({f"{k} TR": results[k]["terminal_regions"] for k in ("random", "oracle") if k in results})
        if "all_attended_regions" in results.get("random", {}):
            named["random AAR, classifier"] = results["random"]["all_attended_regions"]
        return named

    def plots(self, results: Mapping[str, Any], curves: Mapping[str, Any], out: Path, config: Config) -> None:
        from zoomrl.eval.plots import plot_recall_vs_windows, plot_windows_per_object

        proposals = {
            k: {"recall_at_windows": results[k]["recall_vs_proposals"]}
            for k in ("agent", "random", "oracle")
            if k in results
        }
        plot_recall_vs_windows(
            proposals, out / "recall_vs_proposals.png", title="Recall (IoU >= 0.5) against boxes analysed per image"
        )
        moved = {
            k: {"recall_at_windows": results[k]["recall_vs_proposals_moved"]}
            for k in ("agent", "random")
            if "recall_vs_proposals_moved" in results.get(k, {})
        }
        if moved:
            plot_recall_vs_windows(
                moved,
                out / "recall_vs_proposals_moved.png",
                title="Recall (IoU >= 0.5), the boxes moved by the regressor",
            )
        plot_windows_per_object(results["agent"]["terminal_regions"], out / "windows_per_object.png")

    def report(self, results: Mapping[str, Any], config: Config, log: Log) -> None:
        rvp = results["agent"]["recall_vs_proposals"]
        log("recall vs boxes analysed per image: " + ", ".join(f"{k}: {v:.2f}" for k, v in rvp.items()))
        moved = results["agent"].get("recall_vs_proposals_moved")
        if moved is not None:
            log("the same boxes moved by the regressor: " + ", ".join(f"{k}: {v:.2f}" for k, v in moved.items()))
        super().report(results, config, log)
        log(
            "agent AAR AP (area) by attended-box score: "
            + ", ".join(
                f"{name} {v['ap_area']:.3f}" + (" (used)" if name == config.aar_score else "")
                for name, v in results["aar_by_score"].items()
            )
        )
        plain = results.get("unrefined_aar_by_score", {}).get(config.aar_score)
        if plain is not None:
            log(f"box regression: agent AAR AP (area) {plain['ap_area']:.3f} at the unmoved windows")
        random_aar = results.get("random", {}).get("all_attended_regions")
        if random_aar is not None:
            log(
                f"the random agent's attended regions under the same region classifier: AAR AP (area) "
                f"{random_aar['ap_area']:.3f}"
            )
        budgets = results["agent"].get("aar_by_budget") or {}
        random_budgets = results.get("random", {}).get("aar_by_budget") or {}
        if budgets:
            log(
                "AAR AP (area) with the first N boxes of each image: "
                + ", ".join(
                    f"{n}: {v['ap_area']:.3f}"
                    + (f" (random {random_budgets[n]['ap_area']:.3f})" if n in random_budgets else "")
                    for n, v in budgets.items()
                )
            )


TESTER = ActiveTester()
adopt_trained_config = TESTER.adopt_trained_config


def test(
    config: Config, data: Sequence[str | Path], image_set: str | None, checkpoint: Any, output_dir: Any, **kw: Any
) -> dict[str, Any]:
    """:func:`~zoomrl.experiments.dqn_test.test_family` of the active family: test a trained agent (and the
    baselines), write the outputs of the module docstring, return the results (``model_dir`` defaults to
    ``models_active``; ``features`` replaces the configured feature model: tests use a cheap one)."""
    return test_family(TESTER, config, data, image_set, checkpoint, output_dir, **{"model_dir": "models_active", **kw})


__all__ = ["ActiveTester", "evaluate_active", "test"]
