"""``python -m zoomrl benchmark``: the FLOP count against hand computations, a ``--quick`` run's JSON, the table of
backend ratios, and one-line errors for bad input."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from zoomrl.experiments.bench.cli import different_work, ratio_table
from zoomrl.experiments.bench.flops import forward_flops, kernel_flops
from zoomrl.experiments.bench.measure import kernel_seconds, kernels_alone_seconds, optimizer_step_bytes
from zoomrl.experiments.cli import main


def test_dense_network_flops_equal_a_hand_count():
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)])
    flops, calls = forward_flops(lambda: net(np.zeros((5, 3), np.float32)))
    # 5 rows: 3 -> 4 is 5 * 3 * 4 multiply-adds, 4 -> 2 is 5 * 4 * 2; two operations each
    assert [c.flops for c in calls] == [2 * 5 * 3 * 4, 2 * 5 * 4 * 2]
    assert flops == 200


def test_conv_network_flops_equal_a_hand_count():
    net = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.Conv2D(3, 3, padding="valid"),  # 8x8 -> 6x6
            keras.layers.Conv2D(4, 3, strides=2, padding="same"),  # 6x6 -> 3x3
            keras.layers.Flatten(),
            keras.layers.Dense(5),
        ]
    )
    flops, calls = forward_flops(lambda: net(np.zeros((2, 8, 8, 2), np.float32)))
    conv1 = 2 * 2 * (6 * 6 * 3) * (3 * 3 * 2)  # batch 2; an output value is a 3x3x2 dot product
    conv2 = 2 * 2 * (3 * 3 * 4) * (3 * 3 * 3)
    dense = 2 * 2 * 36 * 5
    assert [c.kind for c in calls] == ["Conv2D", "Conv2D", "Dense"]
    assert [c.flops for c in calls] == [conv1, conv2, dense] == [7776, 3888, 720]
    assert flops == 12384


def test_lstm_cell_flops_and_repeated_calls_are_each_counted():
    classes = (keras.layers.Dense, keras.layers.Conv2D, keras.layers.LSTMCell, keras.layers.GRUCell)
    before = [cls.__dict__.get("call") for cls in classes]
    cell = keras.layers.LSTMCell(5)
    x, h = np.zeros((2, 3), np.float32), np.zeros((2, 5), np.float32)
    flops, calls = forward_flops(lambda: [cell(x, [h, h]) for _ in range(3)])
    # four gates, each a (3 + 5) x 5 kernel over the input and the previous output; three steps
    assert len(calls) == 3 and flops == 3 * 2 * 2 * (3 + 5) * 4 * 5
    # the wrapped layer classes are restored: counting again does not count twice
    again, _ = forward_flops(lambda: cell(x, [h, h]))
    assert again == 640
    assert [cls.__dict__.get("call") for cls in classes] == before


def test_each_call_names_its_kernel_at_its_own_shapes():
    net = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.Conv2D(3, 3, padding="valid"),
            keras.layers.Conv2D(4, 3, strides=2, padding="same"),
            keras.layers.Conv2D(2, 2, dilation_rate=2, padding="valid"),
            keras.layers.Flatten(),
            keras.layers.Dense(5),
        ]
    )
    _, calls = forward_flops(lambda: net(np.zeros((2, 8, 8, 2), np.float32)))
    assert [c.kernel for c in calls] == [
        ("conv", (2, 8, 8, 2), (3, 3, 2, 3), (1, 1), "valid", (1, 1)),
        ("conv", (2, 6, 6, 3), (3, 3, 3, 4), (2, 2), "same", (1, 1)),
        ("conv", (2, 3, 3, 4), (2, 2, 4, 2), (1, 1), "valid", (2, 2)),  # a 2x2 kernel dilated to span 3: 1x1 out
        ("matmul", 2, 2, 5),
    ]
    for c in calls:
        # the kernel's FLOPs, from its input, strides, padding and dilation, are the layer's from its real output
        assert kernel_flops(c.kernel) == c.flops
        if c.kind == "Conv2D":  # and the operation it names gives the layer's output shape
            _, shape_in, shape_k, strides, padding, dilation = c.kernel
            out = keras.ops.conv(
                np.zeros(shape_in, "float32"), np.zeros(shape_k, "float32"), strides, padding, dilation_rate=dilation
            )
            assert tuple(out.shape) == c.output_shape
    lstm, gru = keras.layers.LSTMCell(5), keras.layers.GRUCell(5)
    x, h = np.zeros((2, 3), np.float32), np.zeros((2, 5), np.float32)
    _, calls = forward_flops(lambda: (lstm(x, [h, h]), gru(x, h)))
    # the gates' kernel over the input and the previous output: (3 + 5) x 4 * 5 for the LSTM, x 3 * 5 for the GRU
    assert [c.kernel for c in calls] == [("matmul", 2, 8, 20), ("matmul", 2, 8, 15)]
    assert [kernel_flops(c.kernel) for c in calls] == [c.flops for c in calls] == [2 * 2 * 8 * 20, 2 * 2 * 8 * 15]


def test_kernels_alone_by_hand_and_kernels_time_at_their_shapes():
    k1, k2 = ("matmul", 4, 8, 16), ("conv", (2, 6, 6, 3), (3, 3, 3, 4), (2, 2), "same", (1, 1))
    # a trained part (factor 3) calling k1 twice and k2 once, a forward-only part calling k2; the optimizer 0.1 s
    assert kernels_alone_seconds([(3, [k1, k1, k2]), (1, [k2])], {k1: 0.5, k2: 0.25}, 0.1) == pytest.approx(
        3 * (0.5 + 0.5 + 0.25) + 0.25 + 0.1
    )
    for k in (k1, k2):
        seconds = kernel_seconds(k, "float32", repeats=1, min_flops=1e4)
        assert 0 < seconds < 1


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    assert main(["benchmark", "all", "--quick", "--output", str(out)]) == 0
    return json.loads(out.read_text())


def test_quick_run_writes_the_documented_fields(quick_result, capsys):
    r = quick_result
    assert r["backend"] == keras.backend.backend() and r["quick"] is True
    roof = r["roofline"]
    assert roof["dtype"] == "float32" and roof["flops_per_second"] > 0
    assert roof["flops_per_second"] == pytest.approx(2 * roof["size"] ** 3 / roof["seconds"])
    bw = r["bandwidth"]  # a triad over two arrays of 8 MiB (quick): 16 MiB read, 8 MiB written
    assert bw["megabytes"] == 8 and bw["bytes_per_second"] == pytest.approx(3 * 8 * 2**20 / bw["seconds"])
    assert set(r["families"]) == {"hierarchical", "active", "glimpse", "patchdrop"}
    for name, fam in r["families"].items():
        assert fam["env"]["unit"] and fam["memory"]["peak_rss_mb"] > 0 and fam["memory"]["tracemalloc_peak_mb"] > 0
        assert "extrapolated" in fam["epoch"]["basis"]
        for net in fam["networks"]:
            assert net["updates_per_second"] > 0 and net["update_flops"] > 0, (name, net["label"])
            achieved = net["update_flops"] * net["updates_per_second"]
            assert net["fraction_of_roofline"] == pytest.approx(achieved / roof["flops_per_second"])
            floor = (
                net["update_flops"] / roof["flops_per_second"] + net["optimizer_step_bytes"] / bw["bytes_per_second"]
            )
            assert net["machine_bound_seconds"] == pytest.approx(floor)
            assert net["fraction_of_machine"] == pytest.approx(floor * net["updates_per_second"])
            assert net["fraction_of_machine"] > net["fraction_of_roofline"]  # the optimizer's bytes add to the floor
            # the update's kernels alone, at the network's own shapes: each counted per call (factor included), they
            # make up the update's FLOPs; their measured seconds and the optimizer's step make up its time
            kernels = net["kernels"]
            assert sum(k["calls_per_update"] * k["flops"] for k in kernels) == net["update_flops"]
            own = sum(k["calls_per_update"] * k["seconds"] for k in kernels)
            assert net["kernels_alone_seconds"] == pytest.approx(
                own + net["optimizer_step_bytes"] / bw["bytes_per_second"]
            )
            shortest = net["best_update_seconds"]  # the shortest timed update, not the mean
            assert net["kernels_alone_share"] == pytest.approx(net["kernels_alone_seconds"] / shortest)
            assert 0 < shortest <= 1 / net["updates_per_second"]
            assert all(k["flops_per_second"] == pytest.approx(k["flops"] / k["seconds"]) for k in kernels)
            assert "_kernels" not in net and "_update" not in net
    # the cache: the second, identical pass of the DQN envs computes no descriptor, so it is the faster
    for name in ("hierarchical", "active"):
        env = r["families"][name]["env"]
        assert env["steps_per_second_warm"] > env["steps_per_second_cold"]
        assert env["backbone_images_cold"] > 0 and env["backbone_images_warm"] == 0
    # fast2's hierarchical network: the 4x4x512 descriptor and the action history (4 x 6)
    labels = [n["label"] for n in r["families"]["hierarchical"]["networks"]]
    assert any("8216-" in label for label in labels) and any("25112-" in label for label in labels)


def test_dqn_update_flops_follow_the_layer_shapes(quick_result):
    net = quick_result["families"]["hierarchical"]["networks"][0]  # quick: 25112-32-32-6 with the IoU head, batch 8
    b = net["batch"]
    q_net = 2 * b * (25112 * 32 + 32 * 32 + 32 * 6)
    with_iou = q_net + 2 * b * 32 * 1
    # a train step of the whole network, and the TD targets' two forwards of the Q-values (Double DQN)
    assert net["update_flops"] == 3 * with_iou + 2 * q_net
    # Adam over every weight (biases and the IoU head's included): the weight read and written, its gradient
    # read, its two moments read and written; 4 bytes each
    weights = (25112 * 32 + 32) + (32 * 32 + 32) + (32 * 6 + 6) + (32 + 1)
    assert net["parameters"] == weights and net["optimizer_step_bytes"] == 7 * 4 * weights


@pytest.mark.parametrize(
    ("optimizer", "values_per_weight"),
    [
        (lambda: keras.optimizers.SGD(0.1), 3),  # weight read and written, gradient read
        (lambda: keras.optimizers.SGD(0.1, momentum=0.9), 5),  # and the momentum read and written
        (lambda: keras.optimizers.Adam(), 7),  # two moments
        (lambda: keras.optimizers.Adam(use_ema=True), 9),  # and the weight average
    ],
)
def test_optimizer_step_bytes_by_hand(optimizer, values_per_weight):
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])  # 12 + 4 weights
    net.compile(optimizer=optimizer())
    net.optimizer.build(net.trainable_variables)
    assert optimizer_step_bytes([net]) == values_per_weight * 16 * 4
    other = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])  # 2 weights
    other.compile(optimizer=keras.optimizers.SGD(0.1))
    other.optimizer.build(other.trainable_variables)
    assert optimizer_step_bytes([net, other]) == values_per_weight * 16 * 4 + 3 * 2 * 4


def test_bad_family_and_backend_exit_2(tmp_path, capsys):
    out = tmp_path / "x.json"
    assert main(["benchmark", "hierarchcal", "--quick", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: unknown family 'hierarchcal'; expected one of hierarchical, active, glimpse, patchdrop, all"]
    assert main(["benchmark", "all", "--backend", "theano", "--output", str(out)]) == 2
    assert "unknown backend 'theano'" in capsys.readouterr().err
    assert not out.exists()


def _fake(backend: str, env: float, ups: float) -> dict:
    net = {"label": "net A", "updates_per_second": ups}
    return {"backend": backend, "families": {"glimpse": {"env": {"steps_per_second": env}, "networks": [net]}}}


def test_ratio_table_divides_by_tensorflow():
    text = ratio_table({"tensorflow": _fake("tensorflow", 10.0, 4.0), "jax": _fake("jax", 5.0, 6.0)})
    lines = text.splitlines()
    assert lines[0].split()[-2:] == ["tensorflow", "jax"]
    assert lines[1].split()[-2:] == ["1.00", "0.50"]  # env steps: 5 / 10
    assert lines[2].split()[-2:] == ["1.00", "1.50"]  # updates: 6 / 4


def test_ratio_table_warns_when_backends_computed_different_windows():
    results = {"tensorflow": _fake("tensorflow", 5.0, 4.0), "jax": _fake("jax", 33.0, 4.0)}
    results["tensorflow"]["families"]["glimpse"]["env"]["backbone_images_cold"] = 176
    results["jax"]["families"]["glimpse"]["env"]["backbone_images_cold"] = 16
    assert different_work(results) == [
        "warning: glimpse env steps computed different backbone windows (tensorflow 176, jax 16): not comparable"
    ]
    assert ratio_table(results).splitlines()[-1] == different_work(results)[0]
    results["jax"]["families"]["glimpse"]["env"]["backbone_images_cold"] = 176
    assert different_work(results) == []


class _FavouriteAction:
    """An agent whose Q-values put one action first everywhere, as an untrained network's argmax may: under JAX
    the bench's agent once always chose 'down', which on the whole-image start box changes no window."""

    def __init__(self, favourite: int, num_actions: int) -> None:
        self.favourite, self.num_actions, self.calls = favourite, num_actions, 0

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        self.calls += 1
        q = np.zeros((len(obs), self.num_actions), np.float32)
        q[:, self.favourite] = 1.0
        return q

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.argmax(self.q_values(obs), axis=1)


def _drive_active(favourite: int) -> tuple[int, list[list[int]], int]:
    """The bench's active env driven 40 steps by an agent favouring ``favourite``: backbone windows computed, the
    actions taken at each step and the agent's Q-value calls."""
    from zoomrl.envs.active import ActiveEnv
    from zoomrl.envs.vector import ZoomVectorEnv
    from zoomrl.experiments.active.config import make_config
    from zoomrl.experiments.bench.families import _drive, _synthetic_detection_images, stand_in_backbone
    from zoomrl.vision.features import make_feature_model

    config = make_config("fast")
    features = make_feature_model("image_zooms", stand_in_backbone, "test", batch_size=config.backbone_batch)
    envs = [
        ActiveEnv(img, boxes, features=features, image_key=f"t{i}", index=i, **config.env_kwargs(True))
        for i, (img, boxes) in enumerate(_synthetic_detection_images(4, seed=1))
    ]
    vec = ZoomVectorEnv(envs, features, config.descriptor_scale)
    taken: list[list[int]] = []
    step = vec.step

    def record(actions: np.ndarray):
        taken.append([int(actions[i]) for i in vec.acting])
        return step(actions)

    vec.step = record
    agent = _FavouriteAction(favourite, vec.num_actions)
    assert _drive(vec, agent, 40) >= 40
    return features.backbone_images, taken, agent.calls


def test_bench_env_steps_do_the_same_work_whatever_the_agent_prefers():
    down_windows, down_actions, down_calls = _drive_active(3)  # down: the start box's border, no new window
    smaller_windows, smaller_actions, _ = _drive_active(5)  # smaller: a new window every step
    assert down_actions == smaller_actions and down_windows == smaller_windows
    assert len({a for step in down_actions for a in step}) > 3  # not one action repeated
    assert down_calls == len(down_actions)  # the Q-network still runs on every step (its cost is timed)


def test_rate_reports_the_mean_rate_and_the_shortest_call(monkeypatch):
    from zoomrl.experiments.bench import measure

    # a warm-up of 10 s; then the loop's start, calls of 3, 1 and 2 s (each read before and after), the loop's end
    clock = iter([0.0, 10.0, 10.0, 10.0, 13.0, 13.0, 14.0, 14.0, 16.0, 16.0])
    monkeypatch.setattr(measure.time, "perf_counter", lambda: next(clock))
    r = measure.rate(lambda: 2, repeats=3, warmup=1)
    assert r["first_call_seconds"] == 10.0 and r["best_call_seconds"] == 1.0 and r["units"] == 6
    assert r["per_second"] == 1.0  # 6 units in 6 s: the mean rate, not the best call's 2 per second


def test_kernel_seconds_divides_by_its_copies_and_network_entry_times_each_kernel_once(monkeypatch):
    from zoomrl.experiments.bench import families, measure

    monkeypatch.setattr(measure, "_best_seconds", lambda run, repeats: (run(), 1.0)[1])
    # 2 * 4 * 8 * 16 = 1024 FLOPs: 9 copies reach 1e4; the convolution's 3888 FLOPs (3x3 outputs): 2 runs
    assert measure.kernel_seconds(("matmul", 4, 8, 16), "float32", 1, min_flops=1e4) == pytest.approx(1 / 9)
    conv = ("conv", (2, 6, 6, 3), (3, 3, 3, 4), (2, 2), "same", (1, 1))
    assert measure.kernel_seconds(conv, "float32", 1, min_flops=1e4) == pytest.approx(1 / 2)

    timed = []
    monkeypatch.setattr(families, "kernel_seconds", lambda k, dtype, repeats: timed.append(k) or 1e-9 * kernel_flops(k))
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    net.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((5, 3), np.float32), np.zeros((5, 2), np.float32)
    sizes = families.Sizes(quick=True)
    for _ in range(2):  # the second network's kernels are the first's: not timed again
        entry = families.network_entry(
            "t",
            "fast",
            5,
            lambda: net.train_on_batch(x, y),
            [(lambda: net(x), 3)],
            26,
            2,
            "",
            trained=[net],
            sizes=sizes,
        )
    assert timed == [("matmul", 5, 3, 4), ("matmul", 5, 4, 2)]
    assert sizes.kernel_seconds == {k: 1e-9 * kernel_flops(k) for k in timed}
    assert entry["_kernels"] == [(3, timed)] and entry["best_update_seconds"] > 0
