"""RAM's hyperparameters and those of its whole-image baselines: one documented dataclass that the ``glimpse``
family's configuration extends (as :class:`zoomrl.agents.dqn.config.DQNConfig` for the value-based families).

:func:`build_agent` makes the agent of one model (``ram``, ``random``, ``cnn`` or ``mlp``) from it, and
:func:`speed_line` says which compiled path it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from zoomrl.core.config import ConfigBase, ConfigError, require_choice, require_finite, require_positive_int

FIRST_LOCATIONS = ("uniform", "centre", "learned")


@dataclass
class RamConfig(ConfigBase):
    glimpses: int = 6
    glimpse_size: int = 12
    """g: each patch is resized to g x g."""
    scales: int = 3
    """k: patches per glimpse, each twice as wide as the one before."""
    glimpse_net: str = "fc"
    """``fc`` (the paper: h_g, h_l of glimpse_hidden/loc_hidden, g of glimpse_units) or ``conv`` (the variant:
    3 conv 5x5/2 with 32, 64, 128 channels, global average pooling)."""
    core: str = "relu"
    """Core RNN: ``relu`` (the paper), ``lstm`` or ``gru``."""
    glimpse_hidden: int = 128
    loc_hidden: int = 128
    glimpse_units: int = 256
    core_units: int = 256
    loc_std: float = 0.15
    """Standard deviation of the Gaussian location policy, in [-1, 1] units."""
    loc_std_final: float = 0.0
    """If positive, the policy's standard deviation is annealed linearly from ``loc_std`` at the first epoch to
    this value at the last (:func:`loc_std_at`), so that the end of training sees glimpses close to the
    deterministic mean path that the test reports; 0 keeps ``loc_std`` throughout."""
    first_location: str = "uniform"
    """``uniform`` (a random first glimpse, in training and on the test's mean path: one seeded draw per image),
    ``centre`` (always the image centre) or ``learned`` (a trained mean, followed exactly on the mean path)."""
    logp_unclipped: bool = False
    """REINFORCE takes log pi at the raw Gaussian sample (the sensor still reads it clipped to [-1, 1]); off: at
    the clipped location, biased near the border."""
    reward: str = "gaussian"
    """Regression reward: ``gaussian`` exp(-d^2/sigma^2) of the normalised distance d, or ``binary`` (d < radius)."""
    reward_sigma: float = 0.26
    """sigma of the gaussian reward (0.26: 40 % reward at d = 0.25, the variant's stated aim)."""
    reward_radius: float = 0.1
    reg_loss: str = "l1"
    """Regression loss: ``l1`` (the variant) or ``mse``."""
    supervised_weight: float = 1.0
    reinforce_weight: float = 1.0
    mean_path_weight: float = 0.0
    """If positive, every update adds this weight times the supervised loss of the deterministic mean path (from the
    model's first location, or the sampled path's first one when ``uniform``; then the location network's means)
    to the loss of the sampled path: the test's headline follows the mean path, on which training otherwise never
    fits the classifier. It trains the glimpse network, the core and the head (locations carry no gradient); the
    location network still learns from the sampled path alone. Costs a second rollout per update. 0: off."""
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    learning_rate_final: float = 0.0
    """If positive, RAM's learning rate falls linearly from ``learning_rate`` in the first epoch to this in the last
    (:func:`learning_rate_at`, set before each epoch), so that the weights the run keeps, the last epoch's, stop
    moving with the minibatch noise; 0 keeps ``learning_rate`` throughout. RAM (``ram``) only, as ``loc_std_final``."""
    momentum: float = 0.9
    """SGD momentum (optimizer sgd only)."""
    weight_average: float = 0.0
    """If positive, the momentum of an exponential moving average of the trainable weights (Polyak averaging,
    updated by the optimizer inside the compiled step after each update: ``average = m * average + (1 - m) *
    weights``). RAM and random glimpses only: at 0.999 the whole-image baselines' 1000 updates are too few (their
    average still holds the first weights). Checkpoints save the averaged weights, which the test measures;
    the run state keeps the raw ones, so a resumed run continues the same trajectory, and the test also reports the
    raw weights' figures (``unaveraged``). The averaging changes no update: a run's raw weights are those of the
    same run without it. 0: off, the last update's weights, as before."""
    baseline_hidden: int = 256
    """Hidden units of the whole-image baselines (cnn, mlp)."""
    xla: bool = True
    """Compile the dense networks with XLA under TensorFlow (faster steps, seconds of compiling first)."""
    eager: bool = False
    """Run the training steps eagerly, no graph compiled (only worth it for the tiny models of tests)."""

    def validate(self) -> RamConfig:
        super().validate()
        for name in ("glimpses", "glimpse_size", "scales", "glimpse_hidden", "loc_hidden", "glimpse_units"):
            require_positive_int(name, getattr(self, name))
        require_positive_int("core_units", self.core_units)
        require_positive_int("baseline_hidden", self.baseline_hidden)
        require_choice("glimpse_net", self.glimpse_net, ("fc", "conv"))
        require_choice("first_location", self.first_location, FIRST_LOCATIONS)
        require_choice("core", self.core, ("relu", "lstm", "gru"))
        require_choice("reward", self.reward, ("gaussian", "binary"))
        require_choice("reg_loss", self.reg_loss, ("l1", "mse"))
        require_choice("optimizer", self.optimizer, ("adam", "sgd"))
        for name in ("loc_std", "reward_sigma", "reward_radius", "learning_rate"):
            require_finite(name, getattr(self, name), low=0.0, low_open=True)
        require_finite("loc_std_final", self.loc_std_final, low=0.0)
        require_finite("learning_rate_final", self.learning_rate_final, low=0.0)
        require_finite("supervised_weight", self.supervised_weight, low=0.0)
        require_finite("reinforce_weight", self.reinforce_weight, low=0.0)
        require_finite("mean_path_weight", self.mean_path_weight, low=0.0)
        require_finite("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        require_finite("weight_average", self.weight_average, low=0.0, high=1.0, high_open=True)
        for name in ("xla", "eager", "logp_unclipped"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, received {getattr(self, name)!r}")
        if self.glimpse_net == "conv" and self.glimpse_size < 8:
            raise ConfigError(
                f"glimpse_size must be at least 8 for the conv glimpse network, received {self.glimpse_size}"
            )
        return self


def linear_at(start: float, final: float, epoch: int, epochs: int) -> float:
    """``start`` in (0-based) ``epoch`` 0, ``final`` in the last epoch ``epochs - 1`` (and after; a one-epoch run
    trains at ``final``), linear in between; ``start`` throughout when ``final`` is 0 (no schedule). It depends on
    the run's ``epochs``: a run resumed with more epochs re-plans its remaining epochs."""
    if final <= 0.0:
        return start
    frac = 1.0 if epochs <= 1 else min(max(epoch / (epochs - 1), 0.0), 1.0)
    return (1.0 - frac) * start + frac * final


def loc_std_at(cfg: RamConfig, epoch: int, epochs: int) -> float:
    """The location policy's standard deviation in ``epoch`` of ``epochs``: ``loc_std`` to ``loc_std_final``."""
    return linear_at(cfg.loc_std, cfg.loc_std_final, epoch, epochs)


def learning_rate_at(cfg: RamConfig, epoch: int, epochs: int) -> float:
    """RAM's learning rate in ``epoch`` of ``epochs``: ``learning_rate`` to ``learning_rate_final``."""
    return linear_at(cfg.learning_rate, cfg.learning_rate_final, epoch, epochs)


def glimpse_size_warning(glimpse_size: int, canvas: int) -> str | None:
    """One line when the glimpse is not smaller than the canvas. A warning, not a refusal: a glimpse that sees the
    whole image is a legitimate upper-bound comparison, but almost always a mistaken flag, and where the model
    looks then hardly matters (a glimpse at the centre sees every pixel)."""
    if glimpse_size < canvas:
        return None
    return (
        f"warning: --glimpse-size {glimpse_size} is not smaller than the {canvas}-pixel canvas: a glimpse at "
        f"the centre sees the whole image, so where the model looks hardly matters (expected under {canvas})"
    )
