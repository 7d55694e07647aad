"""What the value-based families' testing shares (hierarchical, active): which checkpoint ``--checkpoint`` names
(:func:`resolve_checkpoint`), the run's saved configuration beside it (:func:`saved_config`,
:meth:`DQNTester.adopt_trained_config`: the fields a trained network fixes come from training, only test-time fields
from the command line), :class:`ScoredTester` for a family with several detection scores, and :func:`test_family`,
the whole ``test`` of a family: the greedy agent's records, the baselines (whole image, random, oracle) on the same
images, ``results.json``, ``detections.json``, the plots and the pictures of ``--bool-draw``.

A family subclasses :class:`DQNTester` with what is its own: how it runs a search over the images
(:meth:`DQNTester.run_records`, the agent's policy and outputs), how it evaluates records and names the curves, its
oracles and its extra plots. Its agent and feature model come from its trainee
(:meth:`~zoomrl.experiments.dqn_trainee.DQNTrainee.build`), so testing builds exactly what training built.
Imports no family.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from zoomrl.data.images import ImageStore
from zoomrl.data.voc import VocImage
from zoomrl.experiments.dqn_trainee import VALIDATION_FILE, DQNTrainee

Log = Callable[[str], None]
Records = list[dict[str, Any]]


def resolve_checkpoint(checkpoint: str | Path | None, model_dir: str | Path | None, class_object: str) -> Path:
    """``--checkpoint``: a path, ``best``, or None for the last finished epoch of ``MODEL_DIR/<class>``."""
    from zoomrl.agents.dqn.checkpoint import latest_weights

    if checkpoint is not None and str(checkpoint) != "best":
        return Path(checkpoint)
    run_dir = Path(model_dir or ".") / class_object
    found = latest_weights(run_dir, "best" if checkpoint == "best" else "latest")
    if found is None:
        from zoomrl.core.checkpoint import previous_run_hint

        raise FileNotFoundError(
            f"no trained checkpoint in {run_dir} (no latest.json); "
            f"train first or pass --checkpoint{previous_run_hint(run_dir)}"
        )
    return found


def saved_config(checkpoint: Path) -> dict[str, Any] | None:
    """The ``config.json`` of the run beside ``checkpoint`` (None when there is none); a damaged one is a
    :class:`~zoomrl.agents.dqn.checkpoint.CheckpointError` naming the file."""
    from zoomrl.agents.dqn.checkpoint import CheckpointError
    from zoomrl.core.io import FileDamagedError, read_json

    saved_path = Path(checkpoint).parent / "config.json"
    if not saved_path.is_file():
        return None
    try:
        return read_json(saved_path, what="configuration")
    except FileDamagedError as exc:
        raise CheckpointError(str(exc)) from None


def validation_score(
    checkpoint: Path, available: Sequence[str], log: Log, key: str = "score", flag: str = "--score"
) -> str:
    """``--score auto``: the detection score the run's validation chose for ``checkpoint`` (``validation.json``
    beside it: the best epoch's for ``best.weights.h5``, epoch k's for ``epoch_<k>.weights.h5``). Without a
    validation record, the trigger's margin (else its Q-value), said in one line. ``key`` names the choice in
    the record (``aar_score``: the active family's all attended regions, ``flag`` ``--aar-score``)."""
    import re

    from zoomrl.core.io import FileDamagedError, read_json

    fallback = "trigger_advantage" if "trigger_advantage" in available else "trigger_q"
    path = Path(checkpoint).parent / VALIDATION_FILE
    record = None
    if path.is_file():
        try:
            record = read_json(path, what="validation record")
        except FileDamagedError as exc:
            log(f"note: {exc}")
    chosen = None
    if isinstance(record, dict):
        name = Path(checkpoint).name
        m = re.fullmatch(r"epoch_(\d+)\.weights\.h5", name)
        if name.startswith("best.") and record.get("best"):
            chosen = record["best"].get(key)
        elif m:
            chosen = next((e.get(key) for e in record.get("epochs", []) if e.get("epoch") == int(m.group(1))), None)
    if chosen is None or chosen not in available:
        log(
            f"note: {flag} auto: no validation choice for {checkpoint} (train with --val-fraction); scoring by "
            f"{fallback}"
        )
        return fallback
    log(f"{flag} auto: {chosen}, chosen on the run's validation images ({path})")
    return chosen


def _same(a: Any, b: Any) -> bool:
    """Equal values, numbers within 1e-9 (a JSON round trip of ``3 / 4``)."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)):
        return abs(float(a) - float(b)) <= 1e-9
    return bool(a == b)


def _shown(value: Any) -> str:
    """A value as a flag takes it: numbers in ``g`` format."""
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


class DQNTester:
    """A value-based family's test protocol: what is its own. :func:`test_family` calls these in order."""

    trainee: ClassVar[type[DQNTrainee]]
    """The family's trainee: its ``build`` and ``run_meta`` make and check the tested agent."""
    trained_fields: ClassVar[Sequence[str]] = ()
    """Test-time fields a trained network cannot be tested without (another value is refused, naming the flag):
    what gives its actions their meaning, e.g. the hierarchy's scale."""
    noted_fields: ClassVar[Mapping[str, str]] = {}
    """Test-time fields whose other value is said in a note: the field's note, with ``{asked}`` (the test's value)
    and ``{trained}`` (the run's)."""

    def adopt_trained_config(self, config: Any, checkpoint: Path, log: Log) -> Any:
        """``config`` with the fields a trained network fixes (:meth:`~zoomrl.core.config.ConfigBase.model_fields`)
        from the run's ``config.json`` (beside ``checkpoint``), saying which changed, so a network is tested with
        the inputs and actions it was trained with; first, another value of a :attr:`trained_fields` field is
        refused and one of a :attr:`noted_fields` field said (:meth:`check_saved`)."""
        saved = saved_config(checkpoint)
        if saved is None:
            return config
        self.check_saved(config, saved, checkpoint, log)
        fields = type(config).model_fields()
        changes = {k: saved[k] for k in fields if k in saved and saved[k] != getattr(config, k)}
        if not changes:
            return config
        log(
            f"testing with the trained network's {', '.join(f'{k}={v}' for k, v in changes.items())} "
            f"(from {Path(checkpoint).parent / 'config.json'})"
        )
        return config.replace(**changes)

    def check_saved(self, config: Any, saved: Mapping[str, Any], checkpoint: Path, log: Log) -> None:
        """Refuse another value of a :attr:`trained_fields` field, note one of a :attr:`noted_fields` field."""
        from zoomrl.agents.dqn.checkpoint import CheckpointError

        for name in self.trained_fields:
            if name in saved and not _same(saved[name], getattr(config, name)):
                flag = "--" + name.replace("_", "-")
                raise CheckpointError(
                    f"{checkpoint}: trained with {flag} {_shown(saved[name])}, this test asks for "
                    f"{_shown(getattr(config, name))}; pass the training value"
                )
        for name, note in self.noted_fields.items():
            if saved.get(name) not in (None, getattr(config, name)):
                log("note: " + note.format(asked=getattr(config, name), trained=saved[name]))

    def label(self, config: Any) -> str:
        """The run's name in the plots' and pictures' titles."""
        raise NotImplementedError

    def num_actions(self, config: Any) -> int:
        raise NotImplementedError

    def opening(self, images: Sequence[VocImage], checkpoint: Path, config: Any) -> str:
        """The first log line: what is tested on what."""
        return f"testing {checkpoint} on {len(images)} images ({self.label(config)}, class '{config.class_object}')"

    def run_records(
        self,
        images: Sequence[VocImage],
        store: ImageStore,
        config: Any,
        policy: Callable,
        batch: int,
        features: Any = None,
        q_fn: Callable | None = None,
        progress: Callable[[int], None] | None = None,
        **kw: Any,
    ) -> Records:
        """Run ``policy`` on every image, ``batch`` images in lockstep; one record per image, in input order
        (``kw``: the family's options, e.g. ``oracle=True``)."""
        raise NotImplementedError

    def agent_records(
        self,
        images: Sequence[VocImage],
        store: ImageStore,
        config: Any,
        agent: Any,
        features: Any,
        progress: Any,
        checkpoint: Path,
    ) -> Records:
        """The greedy agent's records (``checkpoint``: the weights tested, whose folder may hold more of the run)."""
        raise NotImplementedError

    def scorer_view(self, config: Any) -> Callable[[Sequence[float], int, int], tuple[float, float, float, float]]:
        """How the family's feature model sees a window, for the region classifier (the trainee's
        :meth:`~zoomrl.experiments.dqn_trainee.DQNTrainee.view_of`)."""
        return self.trainee.view_of(config)

    def scored_records(
        self,
        records: Records,
        images: Sequence[VocImage],
        store: ImageStore,
        config: Any,
        features: Any,
        checkpoint: Path,
        classifier: bool = True,
    ) -> Records:
        """``records`` with every visited window's ``region_score`` and ``refined`` box when the run trained a
        region classifier or a box regressor (``region_scorer``, ``box_regression``: ``region_scorer.npz`` and
        ``box_regressor.npz`` beside ``checkpoint``), as they are otherwise (``classifier`` False: no scores)."""
        from zoomrl.agents.box_regressor import BoxRegressor
        from zoomrl.agents.region_scorer import RegionScorer
        from zoomrl.experiments.region_scoring import regressor_path, score_records, scorer_path

        run_dir = Path(checkpoint).parent
        wanted = classifier and getattr(config, "region_scorer", False)
        scorer = RegionScorer.load(scorer_path(run_dir)) if wanted else None
        regressor = BoxRegressor.load(regressor_path(run_dir)) if getattr(config, "box_regression", False) else None
        return score_records(records, images, store, features, scorer, self.scorer_view(config), regressor)

    def moved_whole_image(
        self,
        records: Records,
        images: Sequence[VocImage],
        store: ImageStore,
        config: Any,
        features: Any,
        checkpoint: Path,
    ) -> Records | None:
        """With ``box_regression``, the whole-image detector's records (one detection per image, of the images of
        ``records``) with the whole image moved by the run's regressor: what the regressor does without the agent
        (None without one)."""
        if not getattr(config, "box_regression", False):
            return None
        from zoomrl.envs.oracles import whole_image_records

        whole = whole_image_records(records)
        return self.scored_records(whole, images, store, config, features, checkpoint, classifier=False)

    def moved_recall(self, records: Records) -> dict[str, float] | None:
        """The recall against the boxes analysed, each moved by the box regressor, of records that carry the moves
        (``refined``): a family that reports recall against proposals says it (the active one); None here."""
        return None

    def scored_baseline(
        self,
        records: Records,
        images: Sequence[VocImage],
        store: ImageStore,
        config: Any,
        features: Any,
        checkpoint: Path,
    ) -> dict[str, Any]:
        """What a baseline's records (the random agent's) give under the run's region models, added to its
        results beside its own figures (its AP stays its own boxes': the random agent has no such models): a
        family that compares them says which (the active one); nothing here."""
        return {}

    def agent_results(self, records: Records, config: Any, checkpoint: Path, log: Log) -> tuple[Any, Records, dict]:
        """``(config, records, results)``: the agent's evaluation; a family that chooses the detection score here
        returns the config that records the choice and the records scored by it."""
        from zoomrl.eval.detection import evaluate

        return config, records, {"agent": evaluate(records)}

    def baseline(self, records: Records) -> Any:
        """A baseline's evaluation (the whole image, random, an oracle)."""
        from zoomrl.eval.detection import evaluate

        return evaluate(records)

    def oracles(self, oracle: Callable[..., Any]) -> dict[str, Any]:
        """The oracle entries of ``results.json``; ``oracle(**kw)`` runs, scores and evaluates one
        (``kw`` to :meth:`run_records`)."""
        raise NotImplementedError

    def meta(self, images: Sequence[VocImage], config: Any, seconds: float) -> dict[str, Any]:
        """The family's own entries of the run description (in both JSON files)."""
        return {}

    def curves(self, results: Mapping[str, Any]) -> dict[str, Any]:
        """The named evaluations of the precision-recall plot and the summary table."""
        raise NotImplementedError

    def plots(self, results: Mapping[str, Any], curves: Mapping[str, Any], out: Path, config: Any) -> None:
        """The plots beside ``pr_curve.png``."""

    def report(self, results: Mapping[str, Any], config: Any, log: Log) -> None:
        """Log lines after the summary table."""


class ScoredTester(DQNTester):
    """A family whose records can be scored by several detection scores (:func:`zoomrl.eval.detection.rescored`)
    and whose configuration's ``score`` names the agent's: ``results.json`` holds the AP of every score
    (``agent_by_score``) beside the agent's evaluation by its own, and the log says them."""

    def agent_results(self, records: Records, config: Any, checkpoint: Path, log: Log) -> tuple[Any, Records, dict]:
        """The records scored by ``config.score`` (``auto``: the validation's choice, :func:`validation_score`)."""
        from zoomrl.eval.detection import available_scores, evaluate, has_refined, rescored, unrefined

        by_score = {name: rescored(records, name) for name in available_scores(records)}
        if config.score == "auto":
            config = config.replace(score=validation_score(checkpoint, list(by_score), log))
        if config.score not in by_score:
            raise ValueError(
                f"detection score '{config.score}' is not available for {checkpoint} (its records can be "
                f"scored by {', '.join(by_score) or 'nothing'}); predicted_iou needs a network trained "
                f"with --iou-weight > 0, region_score an active run trained with --region-scorer"
            )
        records = by_score[config.score]
        results: dict[str, Any] = {"agent": self.evaluate_agent(records, config), "score": config.score}
        results["agent_by_score"] = {name: ap_pair(evaluate(recs)) for name, recs in by_score.items()}
        if has_refined(records):
            # The box regressor's effect in every run: the same detections at the agent's own windows.
            plain = unrefined(records)
            results["unrefined_by_score"] = {
                name: ap_pair(evaluate(rescored(plain, name))) for name in available_scores(plain)
            }
        return config, records, results

    def evaluate_agent(self, records: Records, config: Any) -> dict[str, Any]:
        """The agent's evaluation of its scored records (a family with more detection sets says so)."""
        from zoomrl.eval.detection import evaluate

        return evaluate(records)

    def report(self, results: Mapping[str, Any], config: Any, log: Log) -> None:
        log(
            "agent AP (area) by detection score: "
            + ", ".join(
                f"{name} {v['ap_area']:.3f}" + (" (used)" if name == config.score else "")
                for name, v in results["agent_by_score"].items()
            )
        )
        if "unrefined_by_score" in results:
            plain = results["unrefined_by_score"].get(config.score)
            if plain is not None:
                log(f"box regression: agent AP (area) {plain['ap_area']:.3f} at the unmoved windows ({config.score})")


def ap_pair(evaluation: Mapping[str, Any]) -> dict[str, float]:
    """The two APs of an evaluation (``results.json``'s ``*_by_score`` entries)."""
    return {"ap_area": evaluation["ap_area"], "ap_voc07": evaluation["ap_voc07"]}


def validation_images(images: Sequence[VocImage], config: Any, checkpoint: Path, log: Log) -> list[VocImage]:
    """``test --eval-split val``: the validation split that the run of ``checkpoint`` held out of ``images`` (the
    ``val_fraction`` and ``seed`` of its ``config.json``), checked against its ``validation.json``; a run without
    one, or data that do not give its validation images back, is a one-line ValueError."""
    from zoomrl.core.io import read_json
    from zoomrl.experiments.dqn_trainee import split_validation

    saved = saved_config(checkpoint) or {}
    fraction, seed = saved.get("val_fraction", 0.0), saved.get("seed", config.seed)  # the run's, not this test's
    if not fraction:
        raise ValueError(f"{checkpoint}: --eval-split val needs a run trained with a validation split (--val-fraction)")
    _, val = split_validation(images, float(fraction), int(seed))
    record = Path(checkpoint).parent / VALIDATION_FILE
    if record.is_file():
        expected = read_json(record, what="validation record").get("images")
        if expected is not None and sorted(expected) != sorted(im.image_id for im in val):
            raise ValueError(
                f"{record}: the run validated on {len(expected)} other images; --eval-split val needs the run's "
                f"training --data and --image-set"
            )
    log(f"testing on the run's {len(val)} validation images (--eval-split val), not on a test split")
    return val


def test_family(
    tester: DQNTester,
    config: Any,
    data: Sequence[str | Path],
    image_set: str | None,
    checkpoint: str | Path | None,
    output_dir: str | Path,
    *,
    model_dir: str | Path | None = None,
    max_images: int | None = None,
    skip_bad: bool = False,
    bool_draw: bool = False,
    baselines: bool = True,
    eval_split: str = "test",
    log: Log = print,
    show_progress: bool = True,
    features: Any = None,
) -> dict[str, Any]:
    """Test a trained agent of ``tester``'s family (and the baselines) on the images of ``data``; writes
    ``results.json``, ``detections.json``, ``pr_curve.png`` and the family's plots in ``output_dir`` (with
    ``bool_draw``, one picture per image in ``pictures/``); returns the results. ``features`` replaces the
    configured feature model (tests use a cheap one)."""
    from tqdm import tqdm

    from zoomrl.agents.dqn.checkpoint import load_weights_checked
    from zoomrl.agents.seeding import seed_everything
    from zoomrl.core.io import write_json
    from zoomrl.data.images import load_images
    from zoomrl.data.voc import LoadReport
    from zoomrl.envs.oracles import oracle_policy, random_policy, score_oracle, score_random, whole_image_records
    from zoomrl.eval.detection import summary_table
    from zoomrl.eval.pictures import draw_pictures
    from zoomrl.eval.plots import plot_pr_curves

    seed_everything(config.seed)
    out = Path(output_dir)
    report = LoadReport()  # what --skip-bad left out goes into results.json: the AP does not cover it
    images = load_images(data, image_set, config.class_object, skip_bad, max_images, log, report=report)
    checkpoint = resolve_checkpoint(checkpoint, model_dir, config.class_object)
    config = tester.adopt_trained_config(config, checkpoint, log)
    if eval_split == "val":
        images = validation_images(images, config, checkpoint, log)
    features, agent, state_size = tester.trainee.build(config, features, log)
    load_weights_checked(checkpoint, agent, tester.trainee.run_meta(config, state_size))
    store = ImageStore()
    log(tester.opening(images, checkpoint, config))

    t0 = time.perf_counter()
    with tqdm(total=len(images), desc="test", unit="img", disable=not show_progress, leave=False) as bar:
        records = tester.agent_records(images, store, config, agent, features, bar.update, checkpoint)
    seconds = time.perf_counter() - t0
    moved_whole = tester.moved_whole_image(records, images, store, config, features, checkpoint)
    config, records, results = tester.agent_results(records, config, checkpoint, log)
    # The whole image once per image: no run needed, so every test reports it (issue 17's "do nothing" bar).
    results["whole_image"] = tester.baseline(whole_image_records(records))
    if moved_whole is not None:
        results["whole_image_moved"] = tester.baseline(moved_whole)
    if baselines:
        rand = tester.run_records(
            images, store, config, random_policy(config.seed, tester.num_actions(config)), config.test_batch
        )
        score_random(rand, config.seed)
        results["random"] = tester.baseline(rand)
        results["random"].update(tester.scored_baseline(rand, images, store, config, features, checkpoint))

        def oracle(**kw: Any) -> Any:
            found = tester.run_records(images, store, config, oracle_policy, config.test_batch, oracle=True, **kw)
            score_oracle(found)
            return tester.baseline(found)

        results.update(tester.oracles(oracle))
    features.close()

    meta = {
        "config": config.to_dict(),
        "checkpoint": str(checkpoint),
        "weights": getattr(features, "weights_name", config.weights),
        "data": [str(d) for d in data],
        "image_set": image_set,
        "split": eval_split,
        "n_images": len(images),
        "skipped": report.skipped_record(config.class_object),
        "seconds": round(seconds, 2),
        **tester.meta(images, config, seconds),
        "feature_stats": features.stats(),
    }
    write_json(out / "detections.json", {**meta, "images": records}, indent=None)
    write_json(out / "results.json", {**meta, **results})

    curves = tester.curves(results)
    plot_pr_curves(curves, out / "pr_curve.png", title=f"{tester.label(config)}, class {config.class_object}")
    tester.plots(results, curves, out, config)
    if bool_draw:
        draw_pictures(images, records, store, out, config.class_object, tester.label(config), show_progress)
    log(summary_table(curves))
    tester.report(results, config, log)
    if moved_whole is not None:
        moved = results["whole_image_moved"]
        ap = moved.get("terminal_regions", moved)["ap_area"]  # the active family nests its terminal regions
        log(f"box regression: the whole image moved by the regressor, AP (area) {ap:.3f} (the agent's regressor alone)")
    log(
        f"test: {len(images)} images in {seconds:.1f} s ({seconds / max(len(images), 1):.2f} s/image); wrote "
        f"{out / 'results.json'}, {out / 'detections.json'} and plots"
        + (f", pictures in {out / 'pictures'}" if bool_draw else "")
    )
    return {**meta, **results}


test_family.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, though a test module may import it
