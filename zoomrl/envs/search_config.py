"""The search task's fields, beside the envs that read them: what a value-based family's configuration composes
(as ``data/splits.TaskDataConfig`` for ``glimpse``). :class:`ZoomTaskConfig` is the hierarchy of
:class:`~zoomrl.envs.zoom.ZoomEnv` with its trigger and training rules (Bellver et al. 2016 and issue 17);
:class:`ActiveTaskConfig` the moving box of :class:`~zoomrl.envs.active.ActiveEnv` (Caicedo and Lazebnik 2015).
Plain fields and their checks: no framework is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zoomrl.core.config import ConfigBase, ConfigError, require_choice, require_finite, require_positive_int
from zoomrl.envs.active import REVISIT_SCOPES

TRAIN_SEARCHES = ("objects", "test")
TRAIN_PAINTS = ("truth", "window")


@dataclass
class SearchTaskConfig(ConfigBase):
    """What both tasks have: the class searched for and the descriptor's scale."""

    MODEL_FIELDS = ("descriptor_scale",)

    class_object: str = "seven"
    """The class this agent searches for (one agent per class, as in the papers): the embedded demo set's
    (``aeroplane`` in the paper's Pascal VOC experiments)."""
    descriptor_scale: float = 1.0
    """Multiplies the region descriptor before the Q-network. VGG-16 pool5 values reach the hundreds (std about 12
    with the HED trunk), which makes early Q-values and losses large and drowns out the 0/1 history; the papers
    used 1 (the hierarchical family's tuned presets 0.05)."""
    continuous_trigger: bool = False
    """Training's trigger reward graded by the IoU (:func:`zoomrl.envs.rewards.trigger_reward`): 3 to 6 rising
    from the threshold to IoU 1, -3 to -1 below it, so a better window is worth more and a near miss costs less
    (else the papers' +-3)."""

    def validate(self) -> Any:
        super().validate()
        require_finite("descriptor_scale", self.descriptor_scale, low=0.0, low_open=True)
        return self


@dataclass
class ZoomTaskConfig(SearchTaskConfig):
    """The hierarchy's geometry, its trigger, the searches per image and training's rules."""

    MODEL_FIELDS = ("history_length",)

    scale_subregion: float = 3 / 4
    """Child size relative to its parent: 3/4 overlapping hierarchy (paper default), 1/2 non-overlapping."""
    number_of_steps: int = 10
    """Most actions in one search (moves plus the trigger)."""
    history_length: int = 4
    """How many past actions, one-hot over 6, the state carries (4 x 6 = 24 values)."""
    trigger_iou: float = 0.5
    """IoU at or above which the trigger earns +3 (else -3)."""
    force_trigger: bool = True
    """Training only: take the trigger whenever the window's IoU with a remaining object is >= trigger_iou
    (paper 3.4)."""
    max_searches: int = 3
    """Testing: most searches per image (each restarts from the whole image after painting the last find);
    a search that ends without a trigger also ends the image. Training searches each image once per
    annotated object."""
    only_first_object: bool = False
    """Testing: one search per image, as in the paper's first-object experiments."""
    # --- training that sees what testing sees (issue 17; all off in the paper's preset) ---------------------
    train_searches: str = "objects"
    """Training's searches per image: ``objects`` (the paper: one search per annotated object, only while one is
    left) or ``test`` (testing's rule: up to ``max_searches`` searches, the image ending at the first search
    without a trigger; searches go on after the last object, where a trigger is wrong)."""
    train_paint: str = "truth"
    """What training paints after a trigger: ``truth`` (the paper: the found object's ground-truth box, nothing
    after a wrong trigger) or ``window`` (testing's rule: the triggered window, right or wrong)."""
    train_negatives: bool = False
    """Train on the images that hold no object of the class too (as negatives: every trigger there is wrong).
    The paper trains on positive images only. Oracle demonstrations stay on positive images."""
    nothing_left_reward: float = -1.0
    """Reward of a move when no object is left to find (a negative image, or every object found). The paper's
    -1 (a move that does not raise the IoU) makes triggering at once (-3) the best of a bad lot; 0 makes searching
    on without a trigger the right answer, so "nothing left here" is learnable."""
    train_trigger_iou: float | None = None
    """The IoU at which training teaches the trigger, kept apart from the test's ``trigger_iou``: the oracle's
    demonstrations and the forced trigger trigger at the first window with IoU >= this, or earlier at a local
    maximum (no child raises the IoU) whose IoU passes the test. None: ``trigger_iou`` (the paper). 1.0: the
    local maximum only."""
    flip_images: bool = False
    """Horizontal flips of the training images: in each epoch every image is flipped with probability 1/2 (its
    own draw, seeded by seed, epoch and image), boxes mirrored, so the agent's actions mean the mirrored moves
    (top-left <-> top-right, bottom-left <-> bottom-right); demonstrations are collected on both orientations."""

    def validate(self) -> Any:
        super().validate()
        require_finite("scale_subregion", self.scale_subregion, low=0.0, high=1.0, low_open=True, high_open=True)
        for name in ("number_of_steps", "history_length", "max_searches"):
            require_positive_int(name, getattr(self, name))
        require_finite("trigger_iou", self.trigger_iou, low=0.0, high=1.0, low_open=True)
        require_choice("train_searches", self.train_searches, TRAIN_SEARCHES)
        require_choice("train_paint", self.train_paint, TRAIN_PAINTS)
        require_finite("nothing_left_reward", self.nothing_left_reward)
        if self.train_trigger_iou is not None:
            # Below the test's threshold the oracle would demonstrate wrong triggers (-3).
            require_finite("train_trigger_iou", self.train_trigger_iou, low=self.trigger_iou, high=1.0)
        return self


@dataclass
class ActiveTaskConfig(SearchTaskConfig):
    """The box's moves, the state, the rewards and thresholds, and the exploration and test policies' rules."""

    MODEL_FIELDS = (
        "history_length",
        "fine_smaller",
        "fine_alpha",
        "alpha",
        "context",
        "cross_width",
        "state_geometry",
        "state_steps",
    )

    alpha: float = 0.2
    """Moves shift by alpha times the box's side; scalings multiply sides by 1 +- alpha."""
    history_length: int = 10
    """Past actions, one-hot, in the state (10 x 9 = 90 values)."""
    number_of_steps: int = 40
    """Most actions in one search, training and testing (a test search restarts after this many)."""
    test_steps: int = 200
    """Testing: most actions per image, over all its searches."""
    trigger_iou: float = 0.6
    """Training: the trigger earns +3 at IoU >= this, else -3 (paper: 0.6)."""
    test_trigger_iou: float = 0.5
    """Testing: the same threshold for the rewards and logs (paper: 0.5, the evaluation's)."""
    context: int = 16
    """Pixels of context around the box at the 224 px warped size (R-CNN padding)."""
    restart_scale: float = 0.75
    """Testing: later searches start from a box of this share of the image at the four corners in turn."""
    test_epsilon: float = 0.0
    """Testing: with this probability a step is a random move (not the trigger; not a revisit while another move
    remains) instead of the greedy action: the greedy policy's precision on its first boxes, some of the random
    agent's spread after them. 0: the paper's greedy policy."""
    test_restart_steps: int = 0
    """Testing: a search without a trigger restarts after this many actions (0: ``number_of_steps``, the
    paper's). The state's step count keeps ``number_of_steps`` as its scale, so a value above it shows the network
    step counts past 1, which training never did. Validation during training uses it too."""
    cross_width: float = 0.2
    """Inhibition of return: each arm of the black cross is this share of the box's side thick."""
    fine_smaller: bool = False
    """A tenth action: a finer smaller (sides times 1 - fine_alpha)."""
    fine_alpha: float = 0.05
    guided_exploration: bool = True
    """Exploring, draw among the actions with a positive reward (all when none has one); off: uniform."""
    state_geometry: bool = False
    """Append the box's normalised geometry (x1 / W, y1 / H, w / W, h / H) to the state."""
    state_steps: bool = False
    """Append the search's step count (actions taken over number_of_steps) to the state."""
    explore_trigger: float = 0.0
    """Exploring, an action is the trigger with this probability wherever the box is (else the guided or uniform
    draw): wrong triggers (-3) then reach the replay memory while epsilon is high, not only through greedy play.
    0: the paper's guided exploration, which tries the trigger only when it pays."""
    avoid_revisits: bool = False
    """Testing: the greedy policy never takes a move to a box already visited in this search (nor a move that
    leaves the box where it is); it takes the best of the other actions. The trigger is always allowed, so a
    search whose every move is a revisit ends by triggering. Off: the paper's plain greedy policy."""
    revisit_iou: float = 1.0
    """With ``avoid_revisits``, a move is a revisit when its box overlaps a box already visited in this search at
    IoU >= this (1: only the same box). Below 1 it also stops near-cycles, such as *bigger* then *smaller*, which
    leave the box at 0.96 of its size, a box not visited before, and spend the search's steps there."""
    revisit_scope: str = "search"
    """With ``avoid_revisits``: ``search`` counts the boxes visited in this search as revisits; ``image`` also the
    boxes of the image's earlier searches, so that a search after a trigger or a restart goes where the agent has
    not looked yet (when that leaves no move, as on a corner start box already explored, the search's own boxes
    alone count). The first search of a test image is the same under both."""

    def validate(self) -> Any:
        super().validate()
        require_finite("revisit_iou", self.revisit_iou, low=0.0, high=1.0)
        require_choice("revisit_scope", self.revisit_scope, REVISIT_SCOPES)
        for name in ("history_length", "number_of_steps", "test_steps"):
            require_positive_int(name, getattr(self, name))
        require_positive_int("context", self.context, allow_zero=True)
        require_positive_int("test_restart_steps", self.test_restart_steps, allow_zero=True)
        if self.context * 2 >= 224:
            raise ConfigError(f"context must be below 112 pixels, received {self.context}")
        require_finite("alpha", self.alpha, low=0.0, high=1.0, low_open=True, high_open=True)
        require_finite("fine_alpha", self.fine_alpha, low=0.0, high=1.0, low_open=True, high_open=True)
        for name in ("trigger_iou", "test_trigger_iou", "restart_scale"):
            require_finite(name, getattr(self, name), low=0.0, high=1.0, low_open=True)
        require_finite("cross_width", self.cross_width, low=0.0, high=1.0)
        require_finite("explore_trigger", self.explore_trigger, low=0.0, high=1.0)
        require_finite("test_epsilon", self.test_epsilon, low=0.0, high=1.0)
        return self

    @property
    def num_actions(self) -> int:
        return 10 if self.fine_smaller else 9

    def env_kwargs(self, training: bool) -> dict[str, Any]:
        """The :class:`~zoomrl.envs.active.ActiveEnv` keyword arguments of a training or testing run."""
        return dict(
            training=training,
            max_steps=self.number_of_steps,
            max_total_steps=self.test_steps,
            history_length=self.history_length,
            trigger_iou=self.trigger_iou if training else self.test_trigger_iou,
            fine_smaller=self.fine_smaller,
            continuous_trigger=self.continuous_trigger,
            alpha=self.alpha,
            fine_alpha=self.fine_alpha,
            restart_scale=self.restart_scale,
            restart_steps=self.test_restart_steps,
            cross_width=self.cross_width,
            context=self.context,
            state_geometry=self.state_geometry,
            state_steps=self.state_steps,
            revisit_iou=self.revisit_iou,
            revisit_scope=self.revisit_scope,
        )


__all__ = ["ActiveTaskConfig", "SearchTaskConfig", "TRAIN_PAINTS", "TRAIN_SEARCHES", "ZoomTaskConfig"]
