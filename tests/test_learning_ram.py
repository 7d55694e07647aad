"""RAM learns where to look: a small problem whose class can be read at one place only.

The task. A 24x24 canvas holds four 6x6 textures, centred at the four quadrant centres (pixels 6 and 18, that is
``(+-0.5, +-0.5)`` in [-1, 1] units). The texture at the top right, ``(0.5, -0.5)``, is the label: horizontal
stripes (0), vertical stripes (1) or a checkerboard (2). The other three are decoys, drawn independently of the
label. A glimpse is one 4x4 patch (one scale). From the centre, where the test's mean path starts, it sees no
texture at all. So the class is readable only by moving the second glimpse onto the top-right texture. There,
any of the three textures is told apart from a 4x4 view even a pixel or two off centre. The best possible accuracy
is therefore 100 %; chance is 1/3.

The check. After 500 updates of 32 canvases (Adam 3e-3, about 5 s on 2 cores), the mean path from the centre
must classify at least 90 % of 300 fresh canvases (0.9 of the best possible), and its second glimpse must land on
the top-right texture. The same trained network with a uniformly random second location (the ``random_locations``
switch, nothing retrained) must stay near chance and at least 35 points below. Training is seeded; seeds 0-5 all
reach 100 % by 500 updates (checked by hand while writing the test).

Mutations tried by hand, and the test that caught each:

* REINFORCE sign flipped (``rl = +mean(...)`` in ``RamModel.compute_loss``): ``test_ram_learns_to_look_at_the_
  one_informative_place`` (the policy walks away from the texture: chance accuracy), and
  ``test_one_sgd_step_moves_the_location_and_baseline_biases_by_the_hand_computed_gradient``;
* the baseline not subtracted (advantage ``R`` instead of ``R - b``): the learning test still passes (REINFORCE
  without a baseline is unbiased, only noisier); caught by ``test_one_sgd_step_...`` (the locator's bias moves by
  the hand-computed gradient) and by ``test_glimpse_agent.py::test_reinforce_surrogate_matches_a_numpy_computation``;
* the advantage without ``stop_gradient`` (the baseline then takes the REINFORCE gradient): the learning test still
  passes (the baseline settles about 0.5 too high, which adds variance but no bias); caught by
  ``test_one_sgd_step_...`` (the baseline's bias must move by the gradient of ``mean((R - b)^2)`` alone).
"""

from __future__ import annotations

import numpy as np
import pytest

from zoomrl.agents.base import LabelledBatch
from zoomrl.agents.ram.agent import RamAgent

SIDE, TEXTURE = 24, 6
# (x, y) pixel centres of the four textures; the first one carries the label.
CENTRES = ((18, 6), (6, 6), (6, 18), (18, 18))
TARGET = np.array([18 / 12 - 1, 6 / 12 - 1])  # (0.5, -0.5) in [-1, 1] units
NETWORK = dict(
    glimpses=2,
    glimpse_size=4,
    scales=1,
    glimpse_hidden=32,
    loc_hidden=16,
    glimpse_units=32,
    core_units=32,
    loc_std=0.25,
)


def textures(side: int = TEXTURE) -> np.ndarray:
    """Three 0/1 textures of the same mean (1/2): horizontal stripes, vertical stripes, a checkerboard."""
    r = np.arange(side)
    rows = np.broadcast_to(r[:, None] % 2 == 0, (side, side))
    cols = np.broadcast_to(r[None, :] % 2 == 0, (side, side))
    checker = (r[:, None] + r[None, :]) % 2 == 0
    return np.stack([rows, cols, checker]).astype(np.float32)


def canvases(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` canvases ``(n, 24, 24)`` and their labels (the top-right texture); the other textures are decoys."""
    tex = textures()
    labels = rng.integers(0, 3, n)
    kinds = np.concatenate([labels[:, None], rng.integers(0, 3, (n, len(CENTRES) - 1))], axis=1)
    x = np.zeros((n, SIDE, SIDE), np.float32)
    h = TEXTURE // 2
    for k, (cx, cy) in enumerate(CENTRES):
        x[:, cy - h : cy + h, cx - h : cx + h] = tex[kinds[:, k]]
    return x, labels


def train_ram(seed: int = 0, updates: int = 500, batch: int = 32, **overrides) -> RamAgent:
    import keras

    from zoomrl.agents.ram.agent import jit_for

    keras.utils.set_random_seed(seed)
    agent = RamAgent(
        (SIDE, SIDE, 1),
        optimizer="adam",
        learning_rate=3e-3,
        # A tf.function graph without XLA under TensorFlow; under JAX ``jax.jit``, where ``False`` would run every
        # update op by op (76 s for the 500 updates against 15 s jitted).
        jit_compile=jit_for("fc", xla=False),
        seed=seed,
        task="classify",
        n_outputs=3,
        **{**NETWORK, **overrides},
    )
    rng = np.random.default_rng(seed)
    for _ in range(updates):
        agent.learn(LabelledBatch(*canvases(batch, rng)))
    return agent


def accuracy_from_centre(
    agent: RamAgent, images: np.ndarray, labels: np.ndarray, random_second: bool = False
) -> tuple[float, np.ndarray]:
    """Accuracy when the first glimpse is at the centre; the second follows the location network's mean, or with
    ``random_second`` is drawn uniformly (the same trained weights). Returns ``(accuracy, second locations)``."""
    centre = np.zeros((len(images), 2), np.float32)
    agent.model.random_locations = random_second
    try:
        agent.reseed(7)
        out, locs = agent.rollout(images, centre, stochastic=random_second)
    finally:
        agent.model.random_locations = False
    return float(np.mean(out.argmax(axis=1) == labels)), locs[:, 1]


def test_the_task_is_readable_only_at_the_top_right():
    """The task's premise, by hand: from the centre a 4x4 glimpse sees nothing; at the target it sees the label's
    texture, at the other centres a decoy."""
    from zoomrl.agents.ram.sensor import glimpse_numpy

    images, labels = canvases(6, np.random.default_rng(0))
    centre = glimpse_numpy(images[..., None], np.zeros((6, 2)), 4, 1)
    assert not centre.any()
    at_target = glimpse_numpy(images[..., None], np.tile(TARGET, (6, 1)), 4, 1)[..., 0]
    np.testing.assert_array_equal(at_target, textures()[labels][:, 1:5, 1:5])
    assert len({t.tobytes() for t in textures(4)}) == 3  # three different 4x4 views


@pytest.fixture(scope="module")
def trained() -> RamAgent:
    return train_ram()


def test_ram_learns_to_look_at_the_one_informative_place(trained, record_property):
    images, labels = canvases(300, np.random.default_rng(123))
    acc, second = accuracy_from_centre(trained, images, labels)
    acc_random, _ = accuracy_from_centre(trained, images, labels, random_second=True)
    best = 1.0
    record_property("fraction_of_best", acc / best)  # test_backends_learning.py compares it across backends
    assert acc >= 0.9 * best, f"RAM reached {acc:.1%} (random second glimpse {acc_random:.1%})"
    # the second glimpse lands on the top-right texture: within 3 pixels (its half-width, 1/4 in [-1, 1] units) of
    # its centre, where the nearest decoy is 12 pixels away
    assert np.all(np.abs(second.mean(axis=0) - TARGET) < 1 / 4), second.mean(axis=0)
    assert acc_random <= 0.55 and acc - acc_random >= 0.35, (acc, acc_random)


def _bias(layer) -> np.ndarray:
    import keras

    return np.array(keras.ops.convert_to_numpy(layer.bias), np.float64)


def test_one_sgd_step_moves_the_location_and_baseline_biases_by_the_hand_computed_gradient():
    """One plain SGD step (rate 0.5, no momentum) from known rollouts. With ``A = R - b`` held constant and
    ``log pi = -|l - mu|^2 / (2 sigma^2)``, ``mu = tanh(W h + c)``:

    * the locator's bias ``c`` moves by ``+rate * mean_i sum_t A_it (l_it - mu_it) (1 - mu_it^2) / sigma^2``
      (only REINFORCE reaches it);
    * the baseline's bias moves by ``+rate * 2 * mean_it (R_i - b_it)`` (only ``mean((R - b)^2)`` reaches it).
    """
    import keras

    rng = np.random.default_rng(3)
    images = rng.random((8, 16, 16), dtype=np.float32)
    labels = rng.integers(0, 3, 8)
    agent = RamAgent(
        (16, 16, 1),
        optimizer="sgd",
        learning_rate=0.5,
        momentum=0.0,
        jit_compile=False,
        run_eagerly=True,
        seed=4,
        task="classify",
        n_outputs=3,
        glimpses=3,
        glimpse_size=4,
        scales=1,
        glimpse_hidden=8,
        loc_hidden=8,
        glimpse_units=8,
        core_units=8,
        loc_std=0.3,
    )
    m = agent.model
    # the rollout the update will see: same weights, same generator state
    agent.reseed(11)
    out, means, locs, bases = (
        np.asarray(keras.ops.convert_to_numpy(t), np.float64) for t in m.rollout(images[..., None], None, True)
    )
    reward = (out.argmax(axis=1) == labels).astype(np.float64)
    adv = reward[:, None] - bases  # (B, T-1)
    dlogpi_dc = (locs[:, 1:] - means) * (1 - means**2) / 0.3**2  # (B, T-1, 2)
    grad_loc = -np.mean(np.sum(adv[..., None] * dlogpi_dc, axis=1), axis=0)
    grad_base = -2.0 * np.mean(adv)
    assert np.abs(grad_loc).min() > 1e-3 and abs(grad_base) > 1e-3  # the check is not vacuous
    loc0, base0 = _bias(m.locator), _bias(m.baseline)
    agent.reseed(11)
    agent.learn(LabelledBatch(images, labels))
    np.testing.assert_allclose(_bias(m.locator) - loc0, -0.5 * grad_loc, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(_bias(m.baseline) - base0, [-0.5 * grad_base], rtol=1e-3, atol=1e-6)
