"""The run driver of the core (``zoomrl/core/runner.py``) on a plain-NumPy trainee: exact resume, the allow-list,
the stash of an earlier run and its restore, keep-N and best, the non-finite guard, SIGTERM, TensorBoard scalars.

The trainee fits ``y = 3 x`` by SGD on draws of its own generator; a fresh start adds a "warm-up" step, so a driver
that ran the warm-up again on a resume, or lost the generator's state, gives other weights. The known answers are
computed here by a plain loop (:func:`_reference`), not by the driver.

Mutations tried by hand in ``zoomrl/core/runner.py`` (one at a time; the tests named failed):

- ``init_fresh`` on a resume too: ``test_resume_continues_bit_for_bit``;
- ``trainee.restore(data)`` dropped: ``test_resume_continues_bit_for_bit``,
  ``test_resume_refuses_foreign_or_damaged_files``;
- ``check_resume_config`` not called: ``test_resume_keeps_the_fields_outside_the_allow_list``;
- no ``stash_previous_run`` on a fresh start: ``test_a_new_run_stopped_before_its_first_epoch_gives_the_old_one_back``;
- no ``Checkpointer(run_dir).clear()`` on a fresh start: ``test_fresh_start_removes_epoch_files_without_a_sentinel``;
- the ``FloatingPointError`` passes through: ``test_non_finite_epoch_is_one_line_and_saves_nothing``;
- no SIGTERM handler installed: ``test_sigterm_stops_the_run_and_keeps_the_last_epoch``;
- no TensorBoard scalars: ``test_tensorboard_gets_every_number_but_the_epoch``;
- the score not passed to the checkpointer: ``test_keep_n_and_best``, ``test_fresh_start_removes_...``.
- ``history_in_sentinel`` ignored, or always on; an empty log line logged:
  ``test_history_in_the_sentinel_and_silent_epochs``.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import REPO
from zoomrl.core.checkpoint import read_latest
from zoomrl.core.config import ConfigBase, ConfigError
from zoomrl.core.runner import CheckpointError, EpochResult, Runner


@dataclasses.dataclass
class ToyConfig(ConfigBase):
    learning_rate: float = 0.1
    epochs: int = 3
    seed: int = 0
    note: str = "changeable"


class Toy:
    """SGD on ``y = 3 x``, four draws per epoch; ``scores[k]`` is epoch ``k + 1``'s score."""

    metric = "fit"
    units = 4

    def __init__(
        self,
        config: ToyConfig,
        meta: Mapping[str, Any] | None = None,
        scores: Sequence[float] | None = None,
        fail_at: int | None = None,
    ) -> None:
        self.config = config
        self.meta = dict(meta or {"family": "toy", "size": 1})
        self.w = np.zeros(1)
        self.rng = np.random.default_rng(config.seed)
        self.scores, self.fail_at = scores, fail_at
        self.closed = False

    def init_fresh(self, bar: Any) -> None:
        self.w += 0.5  # the warm-up: a resumed run must not repeat it

    def run_epoch(self, epoch: int, progress: Any) -> EpochResult:
        if epoch == self.fail_at:
            raise FloatingPointError("non-finite toy loss")
        for _ in range(self.units):
            x = self.rng.normal()
            self.w -= self.config.learning_rate * 2 * (self.w * x - 3 * x) * x
            progress(1)
        score = None if self.scores is None else self.scores[epoch]
        return EpochResult({"epoch": epoch + 1, "w": float(self.w[0]), "label": "text"}, f"epoch {epoch + 1}", score)

    def state(self) -> dict[str, np.ndarray]:
        return {"rng": np.array(json.dumps(self.rng.bit_generator.state))}

    def restore(self, state: Mapping[str, np.ndarray]) -> None:
        self.rng.bit_generator.state = json.loads(str(state["rng"]))

    def save_weights(self, path: Path) -> None:
        with open(path, "wb") as f:
            np.save(f, self.w)

    def load_weights(self, path: Path) -> None:
        with open(path, "rb") as f:
            self.w = np.load(f)

    def before_save(self, history: Sequence[Mapping[str, Any]]) -> None:
        pass

    def after_save(self, history: Sequence[Mapping[str, Any]]) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _reference(config: ToyConfig) -> list[float]:
    """The weight after each epoch of a fresh run, by a plain loop."""
    rng, w, out = np.random.default_rng(config.seed), 0.5, []
    for _ in range(config.epochs):
        for _ in range(4):
            x = rng.normal()
            w -= config.learning_rate * 2 * (w * x - 3 * x) * x
        out.append(w)
    return out


def _runner(run_dir: Path, config: ToyConfig, **kw: Any) -> Runner:
    kw.setdefault("log", lambda m: None)
    return Runner(run_dir, config, config.epochs, show_progress=False, tensorboard=kw.pop("tensorboard", False), **kw)


def _weights(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        return np.load(f)


def test_resume_continues_bit_for_bit(tmp_path):
    cfg = ToyConfig(epochs=3)
    straight = _runner(tmp_path / "a", cfg).train(lambda: Toy(cfg))
    assert [h["w"] for h in straight.history] == _reference(cfg)  # the same operations: equal to the bit
    _runner(tmp_path / "b", ToyConfig(epochs=2)).train(lambda: Toy(ToyConfig(epochs=2)))
    trainee = Toy(cfg)
    resumed = _runner(tmp_path / "b", cfg, resume=True).train(lambda: trainee)
    assert resumed.start_epoch == 2 and [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.history == straight.history
    np.testing.assert_array_equal(_weights(resumed.weights), _weights(straight.weights))
    assert trainee.closed
    with np.load(tmp_path / "b" / "training_state.npz") as s:
        assert int(s["epoch"]) == 3 and json.loads(str(s["meta"])) == {"family": "toy", "size": 1}
        assert json.loads(str(s["history"])) == straight.history
    # nothing left to train: no checkpoint written, the trainee still closed
    again = Toy(cfg)
    out = _runner(tmp_path / "b", cfg, resume=True).train(lambda: again)
    assert out.weights is None and out.start_epoch == 3 and again.closed


def test_resume_keeps_the_fields_outside_the_allow_list(tmp_path):
    _runner(tmp_path, ToyConfig(epochs=1)).train(lambda: Toy(ToyConfig(epochs=1)))
    changed = ToyConfig(epochs=2, learning_rate=0.2)
    with pytest.raises(ConfigError, match=r"--resume: learning_rate=0\.2 \(run has 0\.1\)"):
        _runner(tmp_path, changed, resume=True, changeable=("epochs", "note")).train(lambda: Toy(changed))
    # the allow-list: epochs and note may change
    ok = ToyConfig(epochs=2, note="other")
    assert _runner(tmp_path, ok, resume=True, changeable=("epochs", "note")).train(lambda: Toy(ok)).start_epoch == 1
    # or the fields that must not change: only seed here, so a new learning rate passes
    lr = ToyConfig(epochs=3, learning_rate=0.2)
    assert _runner(tmp_path, lr, resume=True, fields=("seed",)).train(lambda: Toy(lr)).start_epoch == 2


def test_resume_refuses_foreign_or_damaged_files(tmp_path):
    cfg = ToyConfig(epochs=1)
    _runner(tmp_path, cfg).train(lambda: Toy(cfg))
    more = ToyConfig(epochs=2)
    with pytest.raises(CheckpointError, match="checkpoint is for size=1, this run has size=2"):
        _runner(tmp_path, more, resume=True).train(lambda: Toy(more, meta={"family": "toy", "size": 2}))
    # meta_keys limits what is compared
    assert (
        _runner(tmp_path, ToyConfig(epochs=1), resume=True, meta_keys=("family",))
        .train(lambda: Toy(cfg, meta={"family": "toy", "size": 2}))
        .start_epoch
        == 1
    )

    class Foreign(Toy):
        def restore(self, state: Mapping[str, np.ndarray]) -> None:
            raise KeyError("rng2")

    with pytest.raises(CheckpointError, match="training_state.npz: does not fit this agent"):
        _runner(tmp_path, more, resume=True).train(lambda: Foreign(more))
    (tmp_path / "training_state.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(CheckpointError, match="training_state.npz: damaged or truncated training state"):
        _runner(tmp_path, more, resume=True).train(lambda: Toy(more))


def test_a_new_run_stopped_before_its_first_epoch_gives_the_old_one_back(tmp_path):
    cfg = ToyConfig(epochs=2)
    _runner(tmp_path, cfg).train(lambda: Toy(cfg))
    before = (tmp_path / "epoch_2.weights.h5").read_bytes()

    class Interrupted(Toy):
        def run_epoch(self, epoch: int, progress: Any) -> EpochResult:
            assert (tmp_path / "previous_run" / "latest.json").is_file()  # stashed while the new run works
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _runner(tmp_path, cfg).train(lambda: Interrupted(cfg))
    assert read_latest(tmp_path)["epoch"] == 2 and (tmp_path / "epoch_2.weights.h5").read_bytes() == before
    assert not (tmp_path / "previous_run").exists()
    one = ToyConfig(epochs=1, learning_rate=0.3)
    _runner(tmp_path, one).train(lambda: Toy(one))  # a new run's first epoch saved: the old run goes
    assert read_latest(tmp_path)["epoch"] == 1 and not (tmp_path / "previous_run").exists()
    assert not (tmp_path / "epoch_2.weights.h5").exists()


def test_fresh_start_removes_epoch_files_without_a_sentinel(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "epoch_7.weights.h5").write_text("an epoch cut short, never finished")
    (tmp_path / "best.json").write_text(json.dumps({"epoch": 7, "score": 99.0, "metric": "fit"}))
    cfg = ToyConfig(epochs=1)
    _runner(tmp_path, cfg).train(lambda: Toy(cfg, scores=[0.5]))
    assert not (tmp_path / "epoch_7.weights.h5").exists()
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == 1  # not beaten by the stale 99


def test_keep_n_and_best(tmp_path):
    cfg = ToyConfig(epochs=4)
    out = _runner(tmp_path, cfg, keep=2).train(lambda: Toy(cfg, scores=[0.1, 0.9, 0.3, 0.2]))
    assert sorted(p.name for p in tmp_path.glob("epoch_*")) == ["epoch_3.weights.h5", "epoch_4.weights.h5"]
    best = json.loads((tmp_path / "best.json").read_text())
    assert (best["epoch"], best["score"], best["metric"]) == (2, 0.9, "fit")
    assert _weights(tmp_path / "best.weights.h5")[0] == out.history[1]["w"]
    assert json.loads((tmp_path / "config.json").read_text()) == cfg.to_dict()


def test_non_finite_epoch_is_one_line_and_saves_nothing(tmp_path):
    cfg = ToyConfig(epochs=3)
    trainee = Toy(cfg, fail_at=1)
    with pytest.raises(ValueError, match=r"^epoch 2: non-finite toy loss; nothing of this epoch was saved"):
        _runner(tmp_path, cfg).train(lambda: trainee)
    assert read_latest(tmp_path)["epoch"] == 1 and trainee.closed


class QuietToy(Toy):
    """Logs only its last epoch's line (as glimpse under ``--quiet``)."""

    def run_epoch(self, epoch: int, progress: Any) -> EpochResult:
        result = super().run_epoch(epoch, progress)
        return EpochResult(result.record, result.line if epoch + 1 == self.config.epochs else "", result.score)


def test_history_in_the_sentinel_and_silent_epochs(tmp_path):
    cfg = ToyConfig(epochs=2)
    lines: list[str] = []
    out = _runner(tmp_path / "a", cfg, log=lines.append, history_in_sentinel=True).train(lambda: QuietToy(cfg))
    assert lines == ["epoch 2"]  # no empty line for the silent first epoch
    assert read_latest(tmp_path / "a")["history"] == out.history and len(out.history) == 2
    _runner(tmp_path / "b", cfg).train(lambda: Toy(cfg))
    assert "history" not in read_latest(tmp_path / "b")  # off by default: the run state holds it


def test_tensorboard_gets_every_number_but_the_epoch(tmp_path, monkeypatch):
    import zoomrl.core.tblog as tblog

    seen: list[tuple[int, dict[str, Any]]] = []

    class Fake:
        def __init__(self, log_dir: Path, log: Any) -> None:
            assert Path(log_dir) == tmp_path / "tensorboard"

        def scalars(self, step: int, values: dict[str, Any]) -> None:
            seen.append((step, values))

        def close(self) -> None:
            seen.append((-1, {}))

    monkeypatch.setattr(tblog, "ScalarLogger", Fake)
    cfg = ToyConfig(epochs=2)
    out = _runner(tmp_path, cfg, tensorboard=True).train(lambda: Toy(cfg))
    want = [(k + 1, {"w": h["w"], "label": "text"}) for k, h in enumerate(out.history)] + [(-1, {})]
    assert seen == want  # the logger drops the text itself


def test_sigterm_stops_the_run_and_keeps_the_last_epoch(tmp_path):
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO / "tests")!r})
        from pathlib import Path
        from test_runner import Toy, ToyConfig, _runner

        class Killed(Toy):
            def run_epoch(self, epoch, progress):
                if epoch == 1:
                    os.kill(os.getpid(), signal.SIGTERM)
                return super().run_epoch(epoch, progress)

        cfg = ToyConfig(epochs=3)
        try:
            _runner(Path({str(tmp_path)!r}), cfg).train(lambda: Killed(cfg))
        except KeyboardInterrupt:
            print("interrupted", signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.stdout.strip() == "interrupted True", proc.stderr
    assert read_latest(tmp_path)["epoch"] == 1


def test_agent_trainee_hands_state_and_weights_to_its_agent(tmp_path):
    """``AgentTrainee`` (glimpse's trainee's base): the run state and the weights are its agent's, both ways; the
    other hooks do nothing. Mutations caught: ``restore`` or ``load_weights`` not reaching the agent."""
    from zoomrl.core.runner import AgentTrainee

    class Agent:
        def __init__(self) -> None:
            self.calls: list[tuple[str, Any]] = []

        def get_state(self) -> dict[str, np.ndarray]:
            return {"a": np.arange(3)}

        def set_state(self, state: Mapping[str, np.ndarray]) -> None:
            self.calls.append(("set_state", state["a"].tolist()))

        def save_weights(self, path: Path) -> None:
            self.calls.append(("save_weights", path))

        def load_weights(self, path: Path) -> None:
            self.calls.append(("load_weights", path))

    trainee = AgentTrainee()
    trainee.agent = agent = Agent()
    assert trainee.state()["a"].tolist() == [0, 1, 2]
    trainee.restore({"a": np.array([4, 5])})
    trainee.save_weights(tmp_path / "w.h5")
    trainee.load_weights(tmp_path / "v.h5")
    w, v = tmp_path / "w.h5", tmp_path / "v.h5"
    assert agent.calls == [("set_state", [4, 5]), ("save_weights", w), ("load_weights", v)]
    assert trainee.init_fresh(None) is None and trainee.before_save([]) is None and trainee.close() is None
