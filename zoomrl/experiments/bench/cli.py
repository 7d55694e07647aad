"""``python -m zoomrl benchmark FAMILY|all [--quick] [--backend tensorflow|jax|torch|all] [--output FILE]``.

Per family, in one process, on fixed synthetic data (:mod:`.families`): environment steps per second (cold and
warm feature cache for the two DQN families), learner updates per second at the network of the ``fast`` preset
(and of ``fast2`` where it differs), the seconds of a ``fast`` epoch extrapolated from those rates, each update's
FLOPs counted from its layers' shapes (:mod:`.flops`) against a ``keras.ops.matmul`` roofline measured in the same
run, and the update's floor on this machine: those FLOPs at the roofline plus the bytes its optimizer step moves at
least (every weight, gradient and optimizer slot) at a triad's bandwidth, measured too ("fraction of the machine":
the floor over the measured time); the update's kernels alone: each layer's kernel timed alone at its own shapes
(:func:`~.measure.kernel_seconds`), the time an update would take if it did nothing else, over the shortest update
("kernels alone share": near 1 or above, the framework's overhead is not what the update waits on); and peak
memory (RSS, and Python's tracemalloc over one more update of each network). Writes JSON (a temporary file, then
renamed) and prints one table.

``--backend all`` (or a backend other than the one Keras loaded) runs the same benchmark in a subprocess per
installed backend (``KERAS_BACKEND``) and adds a table of ratios to TensorFlow."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

COMMANDS = ("benchmark",)
BACKENDS = ("tensorflow", "jax", "torch")
CHOICES = ("hierarchical", "active", "glimpse", "patchdrop", "all")


def build_parser(command: str = "benchmark", constants: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("family", help=f"one of {', '.join(CHOICES)}")
    p.add_argument("--quick", action="store_true", help="tiny sizes, a few steps: proves it runs (seconds)")
    p.add_argument(
        "--backend",
        default=None,
        help="tensorflow, jax, torch or all (default: the backend Keras loads, KERAS_BACKEND)",
    )
    p.add_argument("--output", default="benchmark_families.json", help="JSON file (default: %(default)s)")
    p.add_argument("--roofline-size", type=int, default=None, help="matmul side (default: 2048; 256 with --quick)")
    return p


def _families(name: str) -> list[str]:
    if name not in CHOICES:
        raise ValueError(f"unknown family '{name}'; expected one of {', '.join(CHOICES)}")
    return list(CHOICES[:-1]) if name == "all" else [name]


def installed_backends() -> list[str]:
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def _backends(value: str | None) -> list[str] | None:
    """The backends to run in subprocesses, or None to run in this process."""
    if value is None:
        return None
    if value == "all":
        return installed_backends()
    if value not in BACKENDS:
        raise ValueError(f"unknown backend '{value}'; expected one of {', '.join(BACKENDS)} or all")
    if value not in installed_backends():
        raise ValueError(f"backend '{value}' is not installed (installed: {', '.join(installed_backends())})")
    if value == os.environ.get("KERAS_BACKEND", "tensorflow"):
        return None
    return [value]


def run_families(families: list[str], quick: bool, roofline_size: int | None) -> dict[str, Any]:
    """Measure ``families`` in this process; the result the JSON holds."""
    import keras
    from tqdm import tqdm

    from zoomrl.agents.seeding import seed_everything
    from zoomrl.experiments.bench.families import PROBES, Sizes
    from zoomrl.experiments.bench.measure import (
        bandwidth_roofline,
        kernels_alone_seconds,
        matmul_roofline,
        peak_rss_mb,
        traced_peak_mb,
    )

    seed_everything(0)
    sizes = Sizes(quick)
    t0 = time.perf_counter()
    dtype = keras.config.floatx()  # every network of the four families runs at it
    size = roofline_size or (256 if quick else 2048)
    result: dict[str, Any] = {
        "command": " ".join(["python -m zoomrl benchmark", *sys.argv[2:]]) if sys.argv[1:2] == ["benchmark"] else "",
        "backend": keras.backend.backend(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "quick": quick,
        "families": {},
    }
    shared: dict[str, Any] = {}
    bar = tqdm(total=len(families) + 1, desc="benchmark", unit="step", file=sys.stderr, disable=None)
    bar.set_postfix_str("matmul roofline")
    roofline = matmul_roofline(size, dtype, repeats=3 if quick else 10)
    result["roofline"] = roofline
    bandwidth = bandwidth_roofline(8 if quick else 256, dtype, repeats=3 if quick else 10)
    result["bandwidth"] = bandwidth
    bar.update()
    for name in families:
        bar.set_postfix_str(name)
        out = PROBES[name](sizes, shared)
        for net in out["networks"]:
            achieved = net["update_flops"] * net["updates_per_second"]
            net["achieved_flops_per_second"] = achieved
            net["fraction_of_roofline"] = achieved / roofline["flops_per_second"]
            # The update's floor on this machine: its matmuls at the matmul roofline, then its optimizer's
            # element-wise step at the triad's bandwidth (one after the other: the step needs every gradient).
            bound = (
                net["update_flops"] / roofline["flops_per_second"]
                + net["optimizer_step_bytes"] / bandwidth["bytes_per_second"]
            )
            net["machine_bound_seconds"] = bound
            net["fraction_of_machine"] = bound * net["updates_per_second"]
            # The update's kernels alone, at the network's own shapes (small matmuls do not reach the large one's
            # rate), each timed right after the update; what the update takes beyond them is the framework's and
            # the uncounted ops'. An estimate, not a floor: the backward kernels are taken as 2 x the forward's.
            # Best-of timings on both sides: this CPU's speed drifts within a run.
            parts = net.pop("_kernels")
            kernels_alone = kernels_alone_seconds(
                parts, sizes.kernel_seconds, net["optimizer_step_bytes"] / bandwidth["bytes_per_second"]
            )
            net["kernels_alone_seconds"] = kernels_alone
            net["kernels_alone_share"] = kernels_alone / net["best_update_seconds"]
            net["kernels"] = _kernel_rows(parts, sizes.kernel_seconds)
        updates = [net.pop("_update") for net in out["networks"]]
        out["memory"] = {
            "peak_rss_mb": peak_rss_mb(),
            "tracemalloc_peak_mb": traced_peak_mb(lambda updates=updates: [u() for u in updates]),
        }
        result["families"][name] = out
        bar.update()
    bar.close()
    result["seconds"] = time.perf_counter() - t0
    return result


def _kernel_rows(
    parts: list[tuple[int, list[tuple[Any, ...]]]], seconds: dict[tuple[Any, ...], float]
) -> list[dict[str, Any]]:
    """The distinct kernels of a network's update, each with its calls per update (the factor counted), its FLOPs
    and its measured rate alone: which of the network's shapes run slowest on this machine."""
    from zoomrl.experiments.bench.flops import kernel_flops

    calls: dict[tuple[Any, ...], int] = {}
    for factor, kernels in parts:
        for k in kernels:
            calls[k] = calls.get(k, 0) + factor
    return [
        {
            "kernel": " ".join(str(v) for v in k),
            "calls_per_update": n,
            "flops": kernel_flops(k),
            "seconds": seconds[k],
            "flops_per_second": kernel_flops(k) / seconds[k],
        }
        for k, n in calls.items()
    ]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def table(result: dict[str, Any]) -> str:
    """One table: a row per network (its family's environment and epoch figures on its first row)."""
    head = (
        f"{'network':58s} {'batch':>5s} {'upd/s':>7s} {'MFLOP/upd':>10s} {'GFLOP/s':>8s} {'of roof':>7s} "
        f"{'opt MB':>7s} {'of bound':>8s} {'kernels':>8s} "
        f"{'env/s cold':>10s} {'env/s warm':>10s} {'epoch s cold':>12s} {'epoch s warm':>12s} {'RSS MB':>7s} "
        f"{'tracemalloc MB':>14s}"
    )
    lines = [head]
    for fam in result["families"].values():
        env, epoch, mem = fam["env"], fam["epoch"], fam["memory"]
        env_cold = env.get("steps_per_second_cold", env.get("steps_per_second"))
        env_warm = env.get("steps_per_second_warm", "-")
        ep_cold = epoch.get("seconds_cold", epoch.get("seconds", epoch.get("policy_seconds_fast")))
        ep_warm = epoch.get("seconds_warm", "-")
        for k, net in enumerate(fam["networks"]):
            first = k == 0
            lines.append(
                f"{net['label'][:58]:58s} {net['batch']:>5d} {_fmt(net['updates_per_second']):>7s} "
                f"{_fmt(net['update_flops'] / 1e6):>10s} {_fmt(net['achieved_flops_per_second'] / 1e9):>8s} "
                f"{net['fraction_of_roofline']:>7.1%} "
                f"{_fmt(net['optimizer_step_bytes'] / 2**20):>7s} {net['fraction_of_machine']:>8.1%} "
                f"{net['kernels_alone_share']:>8.1%} "
                f"{_fmt(env_cold) if first else '':>10s} {_fmt(env_warm) if first else '':>10s} "
                f"{_fmt(ep_cold) if first else '':>12s} {_fmt(ep_warm) if first else '':>12s} "
                f"{_fmt(mem['peak_rss_mb']) if first else '':>7s} "
                f"{_fmt(mem['tracemalloc_peak_mb']) if first else '':>14s}"
            )
    roof, bw = result["roofline"], result["bandwidth"]
    lines.append(
        f"backend {result['backend']} on {result['machine']}; roofline: {roof['size']}x{roof['size']} {roof['dtype']} "
        f"matmul at {roof['flops_per_second'] / 1e9:.1f} GFLOP/s; bandwidth: {bw['megabytes']} MB triad at "
        f"{bw['bytes_per_second'] / 1e9:.1f} GB/s; 'of bound': the update's time over its matmuls at the roofline plus "
        f"its optimizer step ('opt MB') at the bandwidth; 'kernels': the update's kernels, each timed alone at its own "
        f"shapes (backward as 2 x forward; JSON 'kernels'), and its optimizer step, over the shortest update; epochs "
        f"are extrapolated from the measured rates "
        f"(a fixed number of steps, not a whole epoch; JSON 'epoch.basis' says how); patchdrop's epoch is its policy "
        f"stage's; RSS is the process peak so far (it never goes down); {result['seconds']:.0f} s"
        + (" (--quick: tiny sizes, the figures mean nothing)" if result.get("quick") else "")
    )
    return "\n".join(lines)


def _rates(result: dict[str, Any]) -> dict[str, float]:
    """Every rate of a result by a stable key: what the backend ratios compare."""
    out = {}
    for name, fam in result["families"].items():
        env = fam["env"]
        out[f"{name} env steps/s"] = env.get("steps_per_second_cold", env.get("steps_per_second", 0.0))
        for net in fam["networks"]:
            out[f"{net['label']} upd/s"] = net["updates_per_second"]
    return out


def ratio_table(results: dict[str, dict[str, Any]]) -> str:
    """Each backend's rates over TensorFlow's (above 1: faster than TensorFlow)."""
    base = results.get("tensorflow") or next(iter(results.values()))
    ref = _rates(base)
    backends = list(results)
    lines = [f"{'rate (ratio to ' + base['backend'] + ')':70s}" + "".join(f"{b:>12s}" for b in backends)]
    rates = {b: _rates(r) for b, r in results.items()}
    for key, v in ref.items():
        cells = "".join(f"{rates[b].get(key, float('nan')) / v if v else float('nan'):>12.2f}" for b in backends)
        lines.append(f"{key[:70]:70s}{cells}")
    lines += different_work(results)
    return "\n".join(lines)


def different_work(results: dict[str, dict[str, Any]]) -> list[str]:
    """A warning per family whose backends computed different numbers of backbone windows on the cold pass: its
    env ratio then compares different work, not speed (a policy that depends on the backend's weights did so)."""
    out = []
    names = {name for r in results.values() for name in r["families"]}
    for name in sorted(names):
        counts = {
            b: r["families"][name]["env"]["backbone_images_cold"]
            for b, r in results.items()
            if "backbone_images_cold" in r["families"].get(name, {}).get("env", {})
        }
        if len(set(counts.values())) > 1:
            said = ", ".join(f"{b} {n}" for b, n in counts.items())
            out.append(f"warning: {name} env steps computed different backbone windows ({said}): not comparable")
    return out


def _subprocess(backend: str, args: argparse.Namespace, families: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "zoomrl", "benchmark", args.family, "--output", str(out)]
        cmd += ["--quick"] if args.quick else []
        cmd += ["--roofline-size", str(args.roofline_size)] if args.roofline_size else []
        env = {**os.environ, "KERAS_BACKEND": backend}
        # the child's progress and its one-line error reach the terminal; its table is printed here from the JSON
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise ChildProcessError(f"the {backend} benchmark failed (exit {proc.returncode}; its error is above)")
        return json.loads(out.read_text())


def run(command: str, args: argparse.Namespace) -> None:
    from zoomrl.core.io import write_json

    families = _families(args.family)
    backends = _backends(args.backend)
    if args.roofline_size is not None and args.roofline_size < 16:
        raise ValueError(f"--roofline-size must be at least 16; received {args.roofline_size}")
    if backends is None:
        result = run_families(families, args.quick, args.roofline_size)
        write_json(args.output, result)
        print(table(result))
    else:
        results = {b: _subprocess(b, args, families) for b in backends}
        result = {"backends": results, "ratios_to": "tensorflow" if "tensorflow" in results else backends[0]}
        write_json(args.output, result)
        for r in results.values():
            print(table(r))
        print(ratio_table(results))
    print(f"wrote {args.output}")
