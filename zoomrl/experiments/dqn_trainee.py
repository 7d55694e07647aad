"""What the value-based families (hierarchical, active) share on top of the run driver
(:class:`zoomrl.core.runner.Runner`): a DQN agent, its feature model and training images as a
:class:`~zoomrl.core.runner.Trainee` (oracle demonstrations and the behaviour-cloning warm-up on a fresh start,
checked weights files, the training curves), one epoch (:func:`dqn_epoch`, its :class:`EpochStats`), the training
split (:func:`training_split`), and :func:`train_family`, the whole ``train`` of a family.

A family subclasses :class:`DQNTrainee` with what is its own: its feature model and agent
(:meth:`DQNTrainee.build`), its environments (:meth:`DQNTrainee.envs_for`,
:meth:`DQNTrainee.collect_demonstrations`), its exploration (:meth:`DQNTrainee.explorer`) and what it adds to
an epoch (:meth:`DQNTrainee.finish_epoch`).

The agent contract (:class:`~zoomrl.agents.base.OnlineAgent`) covers acting and learning; the
behaviour-cloning warm-up stays a DQN call (``agent.pretrain``, in :meth:`DQNTrainee.init_fresh`): a fixed number
of updates on demonstrations alone, once, before the first epoch, which no other family has and which the
protocol's ``learn()`` (the updates due from the steps observed) does not describe.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from zoomrl.agents.box_regressor import BoxRegressor
from zoomrl.agents.dqn.checkpoint import META_KEYS, load_weights_checked, write_weights
from zoomrl.agents.region_scorer import RegionScorer
from zoomrl.core.config import ConfigBase
from zoomrl.core.io import write_json
from zoomrl.core.runner import BarFactory, EpochResult, Progress, Runner
from zoomrl.data.images import ImageStore
from zoomrl.data.voc import VocImage
from zoomrl.experiments import dqn_loop, region_scoring

Log = Callable[[str], None]


@dataclass
class EpochStats:
    """One line of the training log (and one point of each training curve)."""

    epoch: int
    mean_reward: float
    """Mean total reward of a search."""
    mean_final_iou: float
    """Mean IoU, with the best remaining object, of the window each search ended on."""
    trigger_success: float
    """Share of searches that ended with a trigger at IoU >= trigger_iou."""
    epsilon: float
    loss: float
    seconds: float
    searches: int
    steps: int
    updates: int
    images_per_second: float
    extra: dict[str, Any] = field(default_factory=dict)
    """The family's own statistics (flattened into :meth:`record`)."""

    def record(self) -> dict[str, Any]:
        """The history entry: the fields, then the family's own."""
        out = asdict(self)
        return {**{k: v for k, v in out.items() if k != "extra"}, **self.extra}

    def line(self, epochs: int, middle: str = "", suffix: str = "") -> str:
        """The log line; ``middle`` goes before epsilon, ``suffix`` at the end (the family's own numbers)."""
        return (
            f"epoch {self.epoch}/{epochs}: reward {self.mean_reward:+.2f}  final IoU {self.mean_final_iou:.3f}  "
            f"trigger success {self.trigger_success:.2f}  {middle}epsilon {self.epsilon:.2f}  loss {self.loss:.4f}  "
            f"{self.steps} steps, {self.updates} updates, {self.seconds:.1f} s{suffix}"
        )


def dqn_epoch(
    epoch: int,
    n_images: int,
    envs_for: dqn_loop.EnvsFor,
    explorer: Any,
    features: Any,
    agent: Any,
    config: Any,
    progress: Progress | None = None,
) -> tuple[EpochStats, list]:
    """One pass over the images in 0-based ``epoch``'s shuffled order (:func:`dqn_loop.epoch_pass`) and its
    statistics over every search that took an action; returns them and the envs (which hold the searches)."""
    t0 = time.perf_counter()
    updates_before = agent.updates
    steps, losses, envs = dqn_loop.epoch_pass(epoch, n_images, envs_for, explorer, features, agent, config, progress)
    searches = [s for env in envs for s in env.episode.searches if s.actions]
    rewards = [float(np.sum(s.rewards)) for s in searches]
    successes = sum(int(s.triggered and s.final_iou >= config.trigger_iou) for s in searches)
    seconds = time.perf_counter() - t0
    stats = EpochStats(
        epoch=epoch + 1,
        mean_reward=float(np.mean(rewards)) if rewards else 0.0,
        mean_final_iou=float(np.mean([s.final_iou for s in searches])) if searches else 0.0,
        trigger_success=successes / max(len(searches), 1),
        epsilon=config.epsilon(epoch),
        loss=float(np.mean(losses)) if losses else float("nan"),
        seconds=seconds,
        searches=len(searches),
        steps=steps,
        updates=agent.updates - updates_before,
        images_per_second=n_images / max(seconds, 1e-9),
    )
    return stats, envs


def split_validation(images: Sequence[VocImage], fraction: float, seed: int) -> tuple[list[VocImage], list[VocImage]]:
    """``(training, validation)``: ``round(fraction * n)`` images (at least 1, at most n - 1, none for 0) go to
    validation, those whose hash of ``(seed, image id)`` ranks lowest. The choice depends on the seed and the
    image ids alone, not on their order; both lists keep the input order."""
    if fraction <= 0 or len(images) < 2:
        return list(images), []
    n_val = min(max(int(round(fraction * len(images))), 1), len(images) - 1)

    def rank(im: VocImage) -> tuple[str, str]:
        return hashlib.sha256(f"{seed}:{im.image_id}".encode()).hexdigest(), im.key

    chosen = {id(im) for im in sorted(images, key=rank)[:n_val]}
    return [im for im in images if id(im) not in chosen], [im for im in images if id(im) in chosen]


VALIDATION_FILE = "validation.json"


def best_of_scores(ap_by_score: dict[str, float]) -> tuple[str, float]:
    """The detection score with the highest AP (the first in :data:`~zoomrl.eval.detection.DETECTION_SCORES`'s
    order on ties), and that AP; ``("trigger_q", 0.0)`` when the agent never triggered."""
    if not ap_by_score:
        return "trigger_q", 0.0
    name = max(ap_by_score, key=lambda k: (ap_by_score[k], -list(ap_by_score).index(k)))
    return name, ap_by_score[name]


def validation_record(
    history: Sequence[Mapping[str, Any]], val_images: Sequence[VocImage], sets: Sequence[str] = ()
) -> dict[str, Any]:
    """What ``validation.json`` holds: every epoch's validation APs by score, and the best epoch (the first with
    the highest AP, as the checkpointer's ``best``) with its score. Each of ``sets`` (a family's further detection
    sets, :attr:`DQNTrainee.validation_sets`) adds ``<set>_ap_by_score``, ``<set>_score`` and ``<set>_ap`` to every
    epoch, and ``<set>_score`` and ``<set>_ap`` to the best (still chosen by the agent's detections)."""
    epochs = []
    for h in history:
        if h.get("val_ap") is None:
            continue
        e = {"epoch": h["epoch"], "ap_by_score": h["val_ap_by_score"], "score": h["val_score"], "ap": h["val_ap"]}
        for name in sets:
            e.update({f"{name}_{k}": h.get(f"val_{name}_{k}") for k in ("ap_by_score", "score", "ap")})
        epochs.append(e)
    best = None
    for e in epochs:
        if best is None or e["ap"] > best["ap"]:
            best = e
    best_record = None
    if best is not None:
        best_record = {"epoch": best["epoch"], "score": best["score"], "ap": best["ap"]}
        for name in sets:
            best_record.update({f"{name}_score": best[f"{name}_score"], f"{name}_ap": best[f"{name}_ap"]})
    return {
        "metric": "ap_area",
        "images": [im.image_id for im in val_images],
        "epochs": epochs,
        "best": best_record,
    }


def training_split(
    data: Sequence[str | Path],
    image_set: str | None,
    config: Any,
    skip_bad: bool,
    max_images: int | None,
    log: Log,
    val_fraction: float = 0.0,
    negatives: bool = False,
) -> tuple[list[VocImage], list[VocImage]]:
    """``(training images, validation images)``: a validation split (``val_fraction``, every image of it, as a
    test set) is held out first; training then keeps the images that hold the class (as in the papers: on the
    others every action is penalised and nothing can be found), or all of them with ``negatives``."""
    from zoomrl.data.images import load_images

    cls = config.class_object
    images = load_images(data, image_set, cls, skip_bad, max_images, log)
    images, val = split_validation(images, val_fraction, config.seed)
    if val:
        n_val_objects = sum(len(im.boxes(cls, include_difficult=False)) for im in val)
        log(
            f"data: {len(val)} images ({n_val_objects} '{cls}' objects) held out for validation "
            f"(--val-fraction {val_fraction:g})"
        )
    positives = [im for im in images if len(im.boxes(cls, include_difficult=False))]
    if not positives:
        raise ValueError(f"no training image holds a non-difficult '{cls}' in {', '.join(map(str, data))}")
    chosen = images if negatives else positives
    if len(positives) < len(images):
        log(
            f"data: training on all {len(images)} images, {len(images) - len(positives)} of them without a "
            f"'{cls}' (--train-negatives)"
            if negatives
            else f"data: training on the {len(positives)} of {len(images)} images that hold a non-difficult '{cls}'"
        )
    n_objects = sum(len(im.boxes(cls, include_difficult=False)) for im in positives)
    log(f"data: {len(chosen)} images, {n_objects} '{cls}' objects from {', '.join(map(str, data))}")
    return chosen, val


class DQNTrainee:
    """A DQN family's run for the driver. ``metric``: the score of the ``best`` checkpoint."""

    metric = "trigger_success"
    plot_title: str | None = None
    """The training curves' title (None: the plot's own)."""
    result_fields: ClassVar[Sequence[str]] = ()
    """The configuration fields a resumed run keeps (the family's ``RESULT_FIELDS``)."""
    recorded: ClassVar[Sequence[str]] = ()
    """Arguments of ``train`` that ``config.extra`` records besides the data (``max_images``)."""
    validates: ClassVar[bool] = False
    """The family tests the agent on its validation images after every epoch (:meth:`validation_aps`): the
    ``best`` checkpoint is then the best validation AP, and ``validation.json`` records every epoch's."""
    validation_sets: ClassVar[Sequence[str]] = ()
    """Detection sets besides the agent's detections whose score validation chooses too, from the same run
    (:meth:`validation_set_aps`; active: ``aar``, all attended regions). Each validated epoch's history holds
    ``val_<set>_ap_by_score``, ``val_<set>_score`` and ``val_<set>_ap`` (:func:`validation_record`); they do not
    choose the ``best`` checkpoint."""

    def __init__(
        self,
        config: Any,
        images: Sequence[Any],
        features: Any,
        agent: Any,
        meta: Mapping[str, Any],
        run_dir: Path,
        log: Log,
        val_images: Sequence[Any] = (),
    ) -> None:
        self.config, self.images, self.features, self.agent = config, images, features, agent
        self.meta, self.run_dir, self.log = meta, Path(run_dir), log
        self.val_images = list(val_images)
        self.store = ImageStore()
        if self.val_images:
            self.metric = "validation_ap"

    @property
    def units(self) -> int:
        return len(self.images)

    @classmethod
    def build(cls, config: Any, features: Any, log: Log) -> tuple[Any, Any, int]:
        """``(feature model, agent, state size)`` of a run (``features``: a given feature model, else None)."""
        raise NotImplementedError

    @classmethod
    def run_meta(cls, config: Any, state_size: int) -> dict[str, Any]:
        """What a checkpoint of this run is for (stored in its files, checked when loaded)."""
        raise NotImplementedError

    @classmethod
    def load(
        cls,
        data: Sequence[str | Path],
        image_set: str | None,
        config: Any,
        skip_bad: bool,
        max_images: int | None,
        log: Log,
    ) -> tuple[list[VocImage], list[VocImage]]:
        """``(training images, validation images)``."""
        return training_split(data, image_set, config, skip_bad, max_images, log)

    def envs_for(self, epoch: int, indices: Sequence[int]) -> list:
        """The training envs of ``indices`` in 0-based ``epoch``."""
        raise NotImplementedError

    def explorer(self, epoch: int, epsilon: float) -> Any:
        """The agent's behaviour policy in 0-based ``epoch`` (an :data:`~zoomrl.agents.dqn.agent.Explorer`)."""
        raise NotImplementedError

    def validation_aps(self) -> dict[str, float]:
        """The agent's AP (area) on the validation images, by detection score (a family that ``validates``)."""
        raise NotImplementedError

    def validation_set_aps(self) -> dict[str, dict[str, float]]:
        """The validation APs (area) by score of the agent's detections (key ``""``) and of each of
        :attr:`validation_sets`, from one run of the test protocol; by default the agent's alone
        (:meth:`validation_aps`)."""
        return {"": self.validation_aps()}

    def validation(self, stats: EpochStats) -> tuple[str, float | None]:
        """``(log suffix, epoch score)``: with a validation split, the best detection score's validation AP
        (``val_*`` in ``stats.extra``, None without a split, for a family that ``validates``; every
        ``val_every`` epochs and at the last, the epochs between score None); else trigger success."""
        if not self.validates:
            return "", stats.trigger_success
        val: dict[str, Any] = {"val_ap": None, "val_score": None, "val_ap_by_score": None, "val_seconds": None}
        for name in self.validation_sets:
            val.update({f"val_{name}_ap_by_score": None, f"val_{name}_score": None, f"val_{name}_ap": None})
        every = getattr(self.config, "val_every", 1)
        due = stats.epoch % every == 0 or stats.epoch >= self.config.epochs
        further = ""
        if self.val_images and due:
            t_val = time.perf_counter()
            sets = self.validation_set_aps()
            val["val_ap_by_score"] = sets[""]
            val["val_seconds"] = time.perf_counter() - t_val
            val["val_score"], val["val_ap"] = best_of_scores(val["val_ap_by_score"])
            for name in self.validation_sets:
                aps = sets[name]
                score, ap = best_of_scores(aps)
                val.update({f"val_{name}_ap_by_score": aps, f"val_{name}_score": score, f"val_{name}_ap": ap})
                further += f"  {name} AP {ap:.3f} ({score})"
        stats.extra.update(val)
        if val["val_ap"] is None:
            # An epoch between validations has no score (it cannot be best); without a split, trigger success.
            return "", (None if self.val_images else stats.trigger_success)
        line = f"  validation AP {val['val_ap']:.3f} ({val['val_score']}, {val['val_seconds']:.1f} s){further}"
        return line, val["val_ap"]

    def finish_epoch(self, stats: EpochStats, envs: list) -> EpochResult:
        """The family's statistics on top of ``stats``, and the epoch's score (:meth:`validation`'s)."""
        suffix, score = self.validation(stats)
        return EpochResult(stats.record(), stats.line(self.config.epochs, suffix=suffix), score)

    @property
    def demo_units(self) -> int:
        """How many envs the oracle's demonstrations run (:meth:`demo_envs`' indices run over ``range`` of it)."""
        return len(self.images)

    def demo_envs(self, indices: Sequence[int]) -> list:
        """The envs the oracle demonstrates on: by default the training envs of the first epoch (a family whose
        envs change with the epoch says otherwise)."""
        return self.envs_for(0, indices)

    def collect_demonstrations(self, progress: Progress | None = None) -> int:
        """Store the oracle's transitions over :meth:`demo_envs` as demonstrations; returns its steps."""
        c = self.config
        return dqn_loop.collect_demonstrations(
            self.demo_units, self.demo_envs, self.features, self.agent, c.episode_batch, c.descriptor_scale, progress
        )

    def epoch(self, epoch: int, progress: Progress | None = None) -> tuple[EpochStats, list]:
        """One training pass in 0-based ``epoch`` (:func:`dqn_epoch`): its statistics and its envs."""
        explorer = self.explorer(epoch, self.config.epsilon(epoch))
        envs_for = lambda idx: self.envs_for(epoch, idx)  # noqa: E731
        return dqn_epoch(epoch, len(self.images), envs_for, explorer, self.features, self.agent, self.config, progress)

    def run_epoch(self, epoch: int, progress: Progress) -> EpochResult:
        return self.finish_epoch(*self.epoch(epoch, progress))

    @staticmethod
    def view_of(config: Any) -> region_scoring.View:
        """How the family's feature model sees a window (:data:`zoomrl.experiments.region_scoring.View`), for the
        region classifier: the window itself; a family that pads windows says so."""
        return region_scoring.window_itself

    def scorer_view(self, window: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
        """The box the feature model describes for ``window`` in this run (:meth:`view_of`)."""
        return self.view_of(self.config)(window, width, height)

    def region_models(self) -> tuple[RegionScorer | None, BoxRegressor | None]:
        """The run's region classifier and box regressor (each None when the configuration does not ask for it,
        ``region_scorer``, ``box_regression``): read from the run folder, where the fresh start saved them
        (:meth:`init_fresh`); a resumed run that lacks one fits them again, which gives the same ones."""
        config = self.config
        wanted = (getattr(config, "region_scorer", False), getattr(config, "box_regression", False))
        if not any(wanted):
            return None, None
        if getattr(self, "_region_models", None) is None:
            paths = (region_scoring.scorer_path(self.run_dir), region_scoring.regressor_path(self.run_dir))
            if all(path.is_file() for path, want in zip(paths, wanted) if want):
                self._region_models = (
                    RegionScorer.load(paths[0]) if wanted[0] else None,
                    BoxRegressor.load(paths[1]) if wanted[1] else None,
                )
            else:
                self._region_models = self.train_region_models()
        return self._region_models

    def train_region_models(self, progress: Progress | None = None) -> tuple[RegionScorer | None, BoxRegressor | None]:
        """Fit the region models on the training images and save them in the run folder."""
        return region_scoring.train_region_models(
            self.images, self.store, self.features, self.config, self.run_dir, self.scorer_view, self.log, progress
        )

    def scored(self, records: list[dict[str, Any]], images: Sequence[VocImage]) -> list[dict[str, Any]]:
        """``records`` of ``images`` with every visited window's ``region_score`` and ``refined`` box when the run
        has those region models (as they are otherwise)."""
        scorer, regressor = self.region_models()
        return region_scoring.score_records(
            records, images, self.store, self.features, scorer, self.scorer_view, regressor
        )

    def init_fresh(self, bar: BarFactory) -> None:
        """The region models (``region_scorer``, ``box_regression``: they need the frozen features alone), then
        oracle demonstrations and the behaviour-cloning warm-up (when the configuration asks for them)."""
        agent, config = self.agent, self.config
        if getattr(config, "region_scorer", False) or getattr(config, "box_regression", False):
            with bar(len(self.images), "region models") as b:
                self._region_models = self.train_region_models(b.update)
        if agent.demos is None:
            return
        with bar(self.demo_units, "oracle demonstrations") as b:
            n = self.collect_demonstrations(b.update)
        self.log(f"demonstrations: {len(agent.demos)} transitions from {n} oracle steps")
        if config.bc_epochs:
            bc = agent.pretrain(config.bc_epochs * config.bc_updates_per_epoch)
            self.log(f"behaviour-cloning warm-up: {len(bc)} updates, loss {bc[0]:.3f} -> {bc[-1]:.3f}")

    def state(self) -> dict[str, np.ndarray]:
        return self.agent.get_state()

    def restore(self, state: Mapping[str, np.ndarray]) -> None:
        self.agent.set_state(state)

    def save_weights(self, path: Path) -> None:
        write_weights(self.agent, path, self.meta)

    def load_weights(self, path: Path) -> None:
        load_weights_checked(path, self.agent, self.meta)

    def before_save(self, history: Sequence[Mapping[str, Any]]) -> None:
        if self.val_images:
            # config.json records the validation's choice too (the same numbers as validation.json).
            self.config.extra["validation"] = validation_record(history, self.val_images, self.validation_sets)["best"]

    def after_save(self, history: Sequence[Mapping[str, Any]]) -> None:
        if self.val_images:
            # Written after the checkpoint; a resumed run rewrites it from the saved history.
            write_json(
                self.run_dir / VALIDATION_FILE, validation_record(history, self.val_images, self.validation_sets)
            )
        # Looked up at call time: tests replace the plot (a second per epoch).
        from zoomrl.eval import plots

        self.features.flush()
        kw = {} if self.plot_title is None else {"title": self.plot_title}
        plots.plot_training_curves(history, self.run_dir / "training_curves.png", **kw)

    def close(self) -> None:
        self.features.close()


def train_dqn(
    config: ConfigBase,
    run_dir: Path,
    setup: Callable[[], DQNTrainee],
    fields: Sequence[str],
    *,
    resume: bool,
    keep: int | None,
    log: Log,
    show_progress: bool,
) -> dict[str, Any]:
    """Seed, then drive ``setup()``'s trainee for ``config.epochs`` in ``run_dir``; returns the summary (run folder,
    history, final weights, seconds, the feature model's statistics)."""
    from zoomrl.agents.seeding import seed_everything

    seed_everything(config.seed)
    runner = Runner(
        run_dir,
        config,
        config.epochs,
        fields=fields,
        resume=resume,
        keep=keep,
        log=log,
        show_progress=show_progress,
        meta_keys=META_KEYS,
    )
    out = runner.train(setup)
    stats = out.trainee.features.stats()
    if out.weights is None:
        return {
            "run_dir": str(run_dir),
            "history": out.history,
            "weights": None,
            "seconds": 0.0,
            "summary": f"no epoch to run; nothing written in {run_dir}",
            "feature_stats": stats,
        }
    return {
        "run_dir": str(run_dir),
        "history": out.history,
        "weights": str(out.weights),
        "seconds": out.seconds,
        "summary": f"epochs {out.start_epoch + 1}-{config.epochs} in {out.seconds / 60:.1f} min; checkpoints "
        f"and training_curves.png in {run_dir}",
        "feature_stats": stats,
    }


def train_family(
    trainee: type[DQNTrainee],
    config: Any,
    data: Sequence[str | Path],
    image_set: str | None,
    model_dir: str | Path,
    *,
    max_images: int | None = None,
    skip_bad: bool = False,
    resume: bool = False,
    log: Log = print,
    show_progress: bool = True,
    features: Any = None,
    keep_checkpoints: int | None = 3,
) -> dict[str, Any]:
    """Train one agent of the family ``trainee`` for ``config.class_object`` into ``model_dir/<class>``; returns a
    summary (run folder, history, final weights). The run driver (:mod:`zoomrl.core.runner`) owns the folder,
    resume and checkpoints. ``features`` replaces the configured feature model (tests use a cheap one)."""
    run_dir = Path(model_dir) / config.class_object

    def setup() -> DQNTrainee:
        images, val_images = trainee.load(data, image_set, config, skip_bad, max_images, log)
        model, agent, state_size = trainee.build(config, features, log)
        config.extra.update(
            {
                "weights_used": getattr(model, "weights_name", config.weights),
                "data": [str(d) for d in data],
                "image_set": image_set,
                **({"max_images": max_images} if "max_images" in trainee.recorded else {}),
            }
        )
        meta = trainee.run_meta(config, state_size)
        return trainee(config, images, model, agent, meta, run_dir, log, val_images)

    return train_dqn(
        config,
        run_dir,
        setup,
        trainee.result_fields,
        resume=resume,
        keep=keep_checkpoints,
        log=log,
        show_progress=show_progress,
    )
