"""Run many images' episodes in lockstep: one batched feature call and one batched Q-network call per step.

The loop knows nothing of logging or saving. Training and testing differ only in the policy they pass and
whether they collect transitions.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

from zoomrl.envs.zoom import ImageEpisode
from zoomrl.vision.features import FeatureModel


class Policy(Protocol):
    def __call__(self, episode: ImageEpisode, q_values: np.ndarray | None) -> int:
        """The action for ``episode`` given the Q-values of its current state (None without a network)."""


Transition = Callable[[np.ndarray, int, float, np.ndarray, bool], None]


def run_lockstep(
    episodes: Sequence[ImageEpisode],
    policy: Policy,
    features: FeatureModel | None = None,
    q_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    on_transition: Transition | None = None,
    after_step: Callable[[int], None] | None = None,
    descriptor_scale: float = 1.0,
) -> int:
    """Step every unfinished episode until all are finished; returns the number of actions taken.

    ``features`` and ``q_fn`` may be None for policies that need no state (random agent, oracle).
    With ``on_transition`` (training), a search cut by the step limit gets one more state computed for its last
    window so its final transition can bootstrap; ``after_step(n_new_actions)`` runs after every lockstep step.
    A state is the descriptor times ``descriptor_scale`` followed by the action history.
    """
    active = [e for e in episodes if not e.finished]
    pending: dict[int, tuple[np.ndarray, int, float]] = {}
    total = 0
    while active:
        states = None
        if features is not None:
            descriptors = features.describe([e.request() for e in active])
            history = np.stack([e.history_features() for e in active])
            if descriptor_scale != 1.0:
                descriptors *= np.float32(descriptor_scale)
            states = np.concatenate([descriptors, history], axis=1)
        acting: list[int] = []
        for i, e in enumerate(active):
            p = pending.pop(id(e), None)
            if p is not None and on_transition is not None and states is not None:
                on_transition(p[0], p[1], p[2], states[i], False)
            if e.timed_out:
                e.end_search()
            else:
                acting.append(i)
        q = None
        if acting and q_fn is not None and states is not None:
            q = q_fn(states[acting])
        for j, i in enumerate(acting):
            e = active[i]
            qi = None if q is None else q[j]
            action = policy(e, qi)
            reward, terminal = e.step(action, qi)
            total += 1
            if terminal:
                if on_transition is not None and states is not None:
                    on_transition(states[i], action, reward, states[i], True)
                e.end_search()
            elif on_transition is not None and states is not None:
                pending[id(e)] = (states[i], action, reward)
            elif e.timed_out:
                e.end_search()  # nothing needs the last window's state: save its descriptor
        if after_step is not None:
            after_step(len(acting))
        active = [e for e in episodes if not e.finished]
    return total
