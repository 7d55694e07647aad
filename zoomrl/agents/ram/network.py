"""RAM as a ``keras.Model``: glimpse network, core RNN, location / baseline / output heads, and its loss.

One forward pass (:meth:`RamModel.rollout`), for ``T = glimpses`` steps:

* ``l_1``, the first location (``first_location``): ``"uniform"`` (the paper's reimplementations: drawn uniformly
  from ``[-1, 1]^2``), ``"centre"`` (always ``(0, 0)``: the widest patch then lies inside a square image) or
  ``"learned"`` (a trainable mean ``mu_0 = tanh(theta)``, sampled around like every later location, followed
  exactly on the mean path; ``theta`` learns by REINFORCE against a scalar baseline ``b_0``);
* step ``t``: the sensor reads ``rho_t = sensor(x, l_t)``; the glimpse network gives ``g_t``; the core gives
  ``h_t = core(g_t, h_{t-1})``; unless ``t = T`` the location network proposes ``mu_t = tanh(W_l h_t)`` and the
  next location is sampled, ``l_{t+1} = mu_t + loc_std * N(0, I)`` (or ``mu_t`` itself on the deterministic
  "mean path"; or a uniform draw when ``random_locations``); the baseline network predicts ``b_t = W_b h_t``;
* the sensor and the glimpse network always see ``clip(l, -1, 1)``. With ``logp_unclipped`` the policy's
  log-probability is taken at the sample ``l`` itself, which is what was drawn from ``N(mu, loc_std^2)``; without
  it (the original behaviour) at the clipped location, which biases the gradient near the border: a mean close to
  the border sees its outward samples pulled back to the border, so ``E[clip(l) - mu]`` points inwards even with no
  advantage at all;
* at ``t = T`` the output head reads ``h_T``: class logits (classification) or a 2-D location in [-1, 1] units
  (regression).

Glimpse networks: ``"fc"`` (the paper): ``h_g = ReLU(Linear_128(rho))``, ``h_l = ReLU(Linear_128(l))``,
``g = ReLU(Linear_256(h_g) + Linear_256(h_l))``; ``"conv"`` (the variant): three 5x5 stride-2 convolutions with
32, 64 and 128 channels and ReLU, global average pooling, then the same combination with ``h_l``. Cores: ``"relu"``
(the paper: ``h_t = ReLU(Linear(h_{t-1}) + Linear(g_t))``), ``"lstm"``, ``"gru"``.

**Gradients.** The locations fed to the sensor and the glimpse network are ``stop_gradient``-ed samples, and the
location and baseline networks read ``stop_gradient(h_t)``. So the supervised loss (cross-entropy, or L1 / MSE on
the location) trains the glimpse network, the core and the output head, and nothing else; the REINFORCE surrogate
``-sum_t stop_gradient(R - b_t) * log pi(l_{t+1} | mu_t)`` trains the location network only; the baseline network
learns from ``(R - b_t)^2`` only. With ``random_locations`` there is no policy (no REINFORCE, no baseline loss),
and a ``"learned"`` first location behaves as ``"centre"`` (there is nothing to learn it from). With
``mean_path_weight`` each update also runs the deterministic mean path and adds that weight times its supervised
loss: the same layers learn from it (the glimpse network, the core and the head), the location network does not.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from zoomrl.agents.ram.config import FIRST_LOCATIONS
from zoomrl.agents.ram.rewards import classification_reward, normalised_distance, regression_reward
from zoomrl.agents.ram.sensor import glimpse_sensor

GLIMPSE_NETS = ("fc", "conv")
CORES = ("relu", "lstm", "gru")
TASKS = ("classify", "regress")
REG_LOSSES = ("l1", "mse")


class RamModel(keras.Model):
    """The recurrent attention model (see the module docstring).

    ``n_outputs``: classes (classification) or 2 (regression). Targets ``y``: integer labels ``(B,)``, or for
    regression ``(B, 3)`` rows ``(x, y, scale)``: the landmark in [-1, 1] units and the factor that turns a
    distance in those units into the normalised distance (pixels / box height)."""

    def __init__(
        self,
        task: str = "classify",
        n_outputs: int = 10,
        glimpses: int = 6,
        glimpse_size: int = 12,
        scales: int = 3,
        glimpse_net: str = "fc",
        core: str = "relu",
        glimpse_hidden: int = 128,
        loc_hidden: int = 128,
        glimpse_units: int = 256,
        core_units: int = 256,
        loc_std: float = 0.15,
        anneal_loc_std: bool = False,
        random_locations: bool = False,
        reward: str = "gaussian",
        reward_sigma: float = 0.26,
        reward_radius: float = 0.1,
        reg_loss: str = "l1",
        supervised_weight: float = 1.0,
        reinforce_weight: float = 1.0,
        mean_path_weight: float = 0.0,
        first_location: str = "uniform",
        logp_unclipped: bool = False,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if task not in TASKS or glimpse_net not in GLIMPSE_NETS or core not in CORES or reg_loss not in REG_LOSSES:
            raise ValueError(
                f"RamModel: bad task/glimpse_net/core/reg_loss {task!r}/{glimpse_net!r}/{core!r}/{reg_loss!r}"
            )
        if first_location not in FIRST_LOCATIONS:
            raise ValueError(f"first_location must be one of {', '.join(FIRST_LOCATIONS)}; received {first_location!r}")
        self.task, self.n_outputs, self.glimpses = task, int(n_outputs), int(glimpses)
        self.glimpse_size, self.scales = int(glimpse_size), int(scales)
        self.glimpse_net, self.core_kind, self.core_units = glimpse_net, core, int(core_units)
        self.loc_std, self.random_locations = float(loc_std), bool(random_locations)
        self.reward_kind, self.reward_sigma, self.reward_radius = reward, float(reward_sigma), float(reward_radius)
        self.reg_loss = reg_loss
        # Random glimpses have no policy, so a learned first location would never move: start at the centre.
        self.first_location = "centre" if random_locations and first_location == "learned" else first_location
        self.logp_unclipped = bool(logp_unclipped)
        self.supervised_weight, self.reinforce_weight = float(supervised_weight), float(reinforce_weight)
        self.mean_path_weight = float(mean_path_weight)
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Glimpse network.
        if glimpse_net == "fc":
            self.what = [
                layers.Flatten(name="g_flatten"),
                layers.Dense(glimpse_hidden, activation="relu", name="g_what"),
            ]
        else:
            self.what = [
                layers.Conv2D(ch, 5, strides=2, padding="same", activation="relu", name=f"g_conv{i + 1}")
                for i, ch in enumerate((32, 64, 128))
            ] + [layers.GlobalAveragePooling2D(name="g_gap")]
        self.where = layers.Dense(loc_hidden, activation="relu", name="g_where")
        self.what_out = layers.Dense(glimpse_units, name="g_what_out")
        self.where_out = layers.Dense(glimpse_units, name="g_where_out")
        # Core.
        if core == "relu":
            self.core_in = layers.Dense(core_units, name="core_in")
            self.core_rec = layers.Dense(core_units, use_bias=False, name="core_rec")
        elif core == "lstm":
            self.cell = layers.LSTMCell(core_units, name="core_lstm")
        else:
            self.cell = layers.GRUCell(core_units, name="core_gru")
        # Heads.
        self.locator = layers.Dense(2, name="locator")
        self.baseline = layers.Dense(1, name="baseline")
        self.head = layers.Dense(n_outputs, name="head")
        self.loc_std_var = None
        if anneal_loc_std:
            # The std as a variable, so that a compiled train step reads the value set each epoch (a Python float
            # is baked in when the step is traced). Only created when annealed: other weight files keep their layout.
            self.loc_std_var = self.add_weight(
                shape=(), initializer=keras.initializers.Constant(self.loc_std), trainable=False, name="loc_std"
            )
        if self.first_location == "learned":
            # theta (the first mean is tanh(theta): the centre at the start) and the first step's baseline b_0.
            # Only created when used, so that the weight files of the other settings keep their layout.
            self.first_theta = self.add_weight(shape=(2,), initializer="zeros", name="first_theta")
            self.first_baseline = self.add_weight(shape=(), initializer="zeros", name="first_baseline")
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("supervised", "reinforce", "baseline_loss", "reward")
            + (("mean_path",) if self.mean_path_weight > 0 else ())
        }

    def current_loc_std(self):
        """The location policy's standard deviation now: the annealed variable, or the constant ``loc_std``."""
        return self.loc_std if self.loc_std_var is None else self.loc_std_var

    # -- groups of layers, for checks --------------------------------------------------------------------------
    def location_layers(self) -> list:
        return [self.locator]

    def has_fixed_start(self) -> bool:
        """Whether the deterministic mean path knows its own first location (centre or learned mean)."""
        return self.first_location != "uniform"

    def supervised_layers(self) -> list:
        core = [self.core_in, self.core_rec] if self.core_kind == "relu" else [self.cell]
        return [*self.what, self.where, self.what_out, self.where_out, *core, self.head]

    # -- forward ----------------------------------------------------------------------------------------------
    def glimpse_features(self, images, loc):
        x = glimpse_sensor(images, loc, self.glimpse_size, self.scales)
        for layer in self.what:
            x = layer(x)
        return ops.relu(self.what_out(x) + self.where_out(self.where(loc)))

    def _initial_state(self, batch):
        zeros = ops.zeros((batch, self.core_units))
        return [zeros, zeros] if self.core_kind == "lstm" else [zeros]

    def _core(self, g, state):
        if self.core_kind == "relu":
            h = ops.relu(self.core_in(g) + self.core_rec(state[0]))
            return h, [h]
        h, new_state = self.cell(g, state)
        return h, list(new_state) if isinstance(new_state, (list, tuple)) else [new_state]

    def _sample(self, mu):
        """``(sensor location, recorded location)`` of a draw from ``N(mu, loc_std^2)``: the sensor reads the
        clipped one; the log-probability is taken at the recorded one (the raw sample with ``logp_unclipped``)."""
        noise = keras.random.normal(ops.shape(mu), seed=self.seed_generator)
        sample = mu + self.current_loc_std() * noise
        clipped = ops.clip(sample, -1.0, 1.0)
        return clipped, (sample if self.logp_unclipped else clipped)

    def rollout(self, images, first_locations=None, stochastic: bool = True):
        """Run ``T`` glimpses. Returns ``(outputs, means (B, P, 2), locations (B, T, 2), baselines (B, P))``: ``P``
        policy steps, ``T - 1``, or ``T`` with a learned first location (its mean and baseline come first); the
        last ``P`` locations are the ones the policy drew (possibly outside [-1, 1], see ``logp_unclipped``).

        ``first_locations``: ``(B, 2)``, or None for the model's own (``first_location``). ``stochastic``: sample
        the locations around the location network's means (False: follow the means, the deterministic mean path).
        """
        images = ops.convert_to_tensor(images)
        if len(images.shape) == 3:
            images = images[..., None]
        batch = ops.shape(images)[0]
        means, bases = [], []
        if first_locations is not None:
            loc = ops.cast(ops.convert_to_tensor(first_locations), "float32")
            rec = loc
        elif self.first_location == "uniform":
            loc = keras.random.uniform((batch, 2), -1.0, 1.0, seed=self.seed_generator)
            rec = loc
        elif self.first_location == "centre":
            loc = rec = ops.zeros((batch, 2))
        else:
            mu0 = ops.zeros((batch, 2)) + ops.tanh(self.first_theta)[None, :]
            means.append(mu0)
            bases.append(ops.zeros((batch,)) + self.first_baseline)
            loc, rec = self._sample(mu0) if stochastic else (mu0, mu0)
        state = self._initial_state(batch)
        locs = [ops.stop_gradient(rec)]
        h = None
        for t in range(self.glimpses):
            g = self.glimpse_features(images, ops.stop_gradient(loc))
            h, state = self._core(g, state)
            if t == self.glimpses - 1:
                break
            hs = ops.stop_gradient(h)
            mu = ops.tanh(self.locator(hs))
            bases.append(self.baseline(hs)[:, 0])
            means.append(mu)
            if self.random_locations:
                loc = keras.random.uniform((batch, 2), -1.0, 1.0, seed=self.seed_generator)
                rec = loc
            elif stochastic:
                loc, rec = self._sample(mu)
            else:
                loc = rec = mu
            loc = ops.stop_gradient(loc)
            locs.append(ops.stop_gradient(rec))
        out = self.head(h)
        stack = lambda xs, shape: ops.stack(xs, axis=1) if xs else ops.zeros(shape)  # noqa: E731
        return (out, stack(means, (batch, 0, 2)), ops.stack(locs, axis=1), stack(bases, (batch, 0)))

    def call(self, images, training=False):
        """The sampled rollout; with ``mean_path_weight`` also the mean path's outputs, appended (what
        :meth:`compute_loss` fits): from the same first location as the sampled path unless the model has a fixed
        start of its own, then along the location network's means."""
        sampled = self.rollout(images, None, stochastic=True)
        if self.mean_path_weight <= 0:
            return sampled
        first = None if self.has_fixed_start() else sampled[2][:, 0]
        mean_out = self.rollout(images, first, stochastic=False)[0]
        return (*sampled, mean_out)

    # -- loss -------------------------------------------------------------------------------------------------
    def supervised_loss(self, y, out):
        if self.task == "classify":
            ce = keras.losses.sparse_categorical_crossentropy(ops.cast(y, "int32"), out, from_logits=True)
            return ops.mean(ce)
        target = ops.cast(y[:, :2], out.dtype)
        diff = out - target
        per = ops.sum(ops.abs(diff), axis=-1) if self.reg_loss == "l1" else ops.sum(ops.square(diff), axis=-1)
        return ops.mean(per)

    def reward(self, y, out):
        if self.task == "classify":
            return classification_reward(out, y)
        d = normalised_distance(out, y[:, :2], y[:, 2])
        return regression_reward(d, self.reward_kind, self.reward_sigma, self.reward_radius)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        out, means, locs, bases = y_pred[:4]
        sup = self.supervised_loss(y, out)
        if len(y_pred) > 4:  # mean_path_weight: the mean path's supervised loss, added to the total below
            mean_sup = self.supervised_loss(y, y_pred[4])
            self.trackers["mean_path"].update_state(mean_sup)
            sup_total = self.supervised_weight * sup + self.mean_path_weight * mean_sup
        else:
            sup_total = self.supervised_weight * sup
        reward = ops.stop_gradient(self.reward(y, out))
        steps = means.shape[1]
        if self.random_locations or not steps:
            # No policy: zero losses (written through the unused heads so every weight has a, zero, gradient).
            rl = 0.0 * ops.sum(means)
            base_loss = 0.0 * ops.sum(bases)
        else:
            sampled = ops.stop_gradient(locs[:, -steps:])  # the locations the policy drew
            log_pi = -ops.sum(ops.square(sampled - means), axis=-1) / (2.0 * ops.square(self.current_loc_std()))
            advantage = ops.stop_gradient(reward[:, None] - bases)
            rl = -ops.mean(ops.sum(advantage * log_pi, axis=1))
            base_loss = ops.mean(ops.square(reward[:, None] - bases))
        total = sup_total + self.reinforce_weight * rl + base_loss
        for name, value in (
            ("supervised", sup),
            ("reinforce", rl),
            ("baseline_loss", base_loss),
            ("reward", ops.mean(reward)),
        ):
            self.trackers[name].update_state(value)
        return total
