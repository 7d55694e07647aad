"""``python -m zoomrl sweep FAMILY --classes all|a,b,c [sweep flags] [train and test flags]``.

One Ray Tune trial per class (and per grid point, with ``--grid``): the family's ``train`` then its ``test``, run
in-process in a Ray worker with the flags given (each command takes the flags it knows; a flag neither knows is an
error before anything starts). Runs on a local Ray instance by default (``--num-cpus``), or on an existing cluster
with ``--address`` (paths must then exist on every node). Outputs under ``--output-dir`` (default
``results_sweep_<family>``):

* ``<setting>/<class>/``: the family's test outputs (``results.json``, plots); checkpoints in
  ``--model-dir``/``<setting>/<class>/`` (default ``models_sweep_<family>``); ``<setting>`` is ``default`` without
  a grid, else e.g. ``learning-rate=0.001``;
* ``sweep.csv`` and ``sweep.json``: AP per class (VOC2007 11-point; see :mod:`.table`) and the mean, per setting;
* ``sweep_ap.png``: the bar plot; ``ray/``: Ray Tune's own records.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zoomrl.experiments.common import positive_int

COMMANDS = ("sweep",)
SWEEP_FAMILIES = ("hierarchical", "active")
VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
RESERVED = ("--class-object", "--image-set", "--model-dir", "--output-dir", "--resume")
"""Flags the sweep sets itself for each trial."""
PATH_FLAGS = ("--data", "--feature-cache", "--checkpoint")


def _add_sweep_options(p: Any, display_only: bool = False) -> None:
    """The sweep's flags; ``display_only``: for the top-level parser's help (values given there before FAMILY
    are passed on by :func:`run`)."""

    def add(*a: Any, **kw: Any) -> None:
        if display_only:
            if "help" in kw:
                kw["help"] = kw["help"].replace("%(default)s", str(kw.get("default")))
            kw["default"] = argparse.SUPPRESS
            kw.pop("required", None)
        p.add_argument(*a, **kw)

    add("--classes", required=True, help="'all' (the 20 Pascal VOC classes) or a comma-separated list")
    add("--train-set", default="trainval", help="image set for training (default: %(default)s)")
    add("--test-set", default="test", help="image set for testing (default: %(default)s)")
    add("--address", default=None, help="an existing Ray cluster (e.g. ray://host:10001 or auto); default: a local one")
    add("--num-cpus", type=positive_int, default=None, help="CPUs of the local Ray instance (default: all)")
    add("--cpus-per-trial", type=float, default=1.0, help="CPUs Ray reserves per trial (default: %(default)s)")
    add("--max-concurrent", type=positive_int, default=None, help="most trials at once (default: as CPUs allow)")
    add(
        "--grid",
        action="append",
        default=[],
        metavar="FLAG=V1,V2",
        help="also sweep a train/test flag over values, e.g. --grid learning-rate=1e-4,1e-3 (repeatable)",
    )
    add("--output-dir", default=None, help="outputs (default: results_sweep_<family>)")
    add("--quiet", action="store_true", help="no progress bar")
    add("--model-dir", default=None, help="checkpoints (default: models_sweep_<family>)")


def build_parser(command: str, constants: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Train and test one agent per class on Ray Tune; writes AP per class and the mean.",
        epilog="Any other flag goes to the family's train and test commands (each takes those it knows), e.g. "
        "--preset tiny --data DIR --epochs 1 --weights none --max-images 4.",
    )
    p.add_argument("family", choices=SWEEP_FAMILIES, help="the agent family")
    p.add_argument("flags", nargs=argparse.REMAINDER, help="sweep flags (below) and train/test flags")
    _add_sweep_options(p.add_argument_group("sweep flags"), display_only=True)
    return p


def parse_sweep(family: str, flags: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The sweep's own flags and the rest (for the family)."""
    p = argparse.ArgumentParser(prog=f"python -m zoomrl sweep {family}", allow_abbrev=False)
    _add_sweep_options(p)
    return p.parse_known_args(list(flags))


def classes_of(text: str) -> list[str]:
    if text.strip() == "all":
        return list(VOC_CLASSES)
    classes = [c.strip() for c in text.split(",") if c.strip()]
    if not classes:
        raise ValueError(f"--classes expects 'all' or a comma-separated list of classes, received {text!r}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"--classes lists a class twice: {text!r}")
    return classes


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``--grid flag=v1,v2`` items as ``[("--flag", ["v1", "v2"]), ...]``."""
    out = []
    for item in items:
        name, sep, values = item.partition("=")
        vals = [v for v in values.split(",") if v]
        if not sep or not name.strip("-") or not vals:
            raise ValueError(f"--grid expects FLAG=V1,V2 (e.g. learning-rate=1e-4,1e-3), received {item!r}")
        out.append(("--" + name.strip().lstrip("-"), vals))
    return out


def _flag_names(tokens: Sequence[str]) -> set[str]:
    return {t.split("=", 1)[0] for t in tokens if t.startswith("--")}


def absolute_paths(tokens: Sequence[str]) -> list[str]:
    """The flags with path values made absolute (Ray workers run in their own folders)."""
    out = list(tokens)
    for i, t in enumerate(out):
        name, sep, value = t.partition("=")
        if name in PATH_FLAGS:
            if sep:
                out[i] = f"{name}={os.path.abspath(value)}"
            elif i + 1 < len(out) and not out[i + 1].startswith("--"):
                out[i + 1] = os.path.abspath(out[i + 1])
    return out


def check_family_flags(family: str, tokens: Sequence[str]) -> None:
    """Every flag must belong to the family's train or test command; the reserved ones are the sweep's."""
    from zoomrl.experiments.cli import family_module

    given = _flag_names(tokens)
    reserved = sorted(given & set(RESERVED))
    if reserved:
        raise ValueError(
            f"sweep sets {', '.join(reserved)} itself; use --classes, --train-set, --test-set, "
            f"--model-dir and --output-dir"
        )
    module = family_module(family)
    unknown: set[str] | None = None
    for command in ("train", "test"):
        parser = module.build_parser(command)
        try:
            _, rest = parser.parse_known_args(list(tokens))
        except SystemExit:
            raise ValueError(
                f"sweep: bad value in the flags for '{family} {command}' (see the message above)"
            ) from None
        names = _flag_names(rest)
        unknown = names if unknown is None else unknown & names
    if unknown:
        raise ValueError(f"{', '.join(sorted(unknown))}: not a flag of '{family} train' or '{family} test'")
    if tokens and not tokens[0].startswith("-"):
        raise ValueError(f"sweep: unexpected argument {tokens[0]!r}; flags start with --")


def check_data(family: str, flags: Sequence[str], classes: Sequence[str], image_sets: Sequence[str]) -> None:
    """Before Ray starts (it is slow to import and wraps a trial's one-line error in a long traceback): every data
    root of ``flags`` is a VOC layout that has every image set of ``image_sets``, and every class of ``classes``
    has an object in each set (class names match in any case, as in training and testing). Reads only the
    annotations (each set once); a malformed one is left to the trials (``--skip-bad`` may be given)."""
    import importlib

    from zoomrl.data.voc import DataError, check_root, load_dataset, read_image_set, same_class
    from zoomrl.experiments.cli import FAMILIES

    module = importlib.import_module(FAMILIES[family] + ".cli")  # where each family resolves its --data
    args, _ = module.build_parser("train").parse_known_args(list(flags) + ["--class-object", classes[0]])
    roots = [Path(r) for r in module.data_roots(args)]
    for root in roots:
        check_root(root)
    where = ", ".join(map(str, roots))
    names_of: dict[tuple, set[str]] = {}
    for image_set in dict.fromkeys(image_sets):
        for cls in classes:
            # the split file may depend on the class (<class>_<set>.txt); sets listing the same ids are read once
            ids = tuple(tuple(read_image_set(root, image_set, cls)) for root in roots)
            names = names_of.get(ids)
            if names is None:
                images = load_dataset(roots, image_set, cls, skip_bad=True)
                names = names_of[ids] = {o.name for im in images for o in im.objects}
            if not any(same_class(n, cls) for n in names):
                raise DataError(
                    f"sweep: class '{cls}' has no object in image set '{image_set}' of {where}; "
                    f"classes present: {', '.join(sorted(names)) or 'none'}"
                )


def run_trial(config: dict[str, Any]) -> dict[str, Any]:
    """One Ray Tune trial: the family's train, then its test, for one class; reports the APs."""
    from zoomrl.experiments.common import quiet_backend

    quiet_backend()
    import importlib

    from zoomrl.core.io import read_json
    from zoomrl.experiments.cli import FAMILIES
    from zoomrl.experiments.sweep.table import extract

    family, cls = config["family"], config["class_object"]
    module = importlib.import_module(FAMILIES[family])
    model_dir, output_dir = config["model_dir"], config["output_dir"]
    common = list(config["flags"]) + ["--class-object", cls, "--model-dir", model_dir, "--quiet"]
    t0 = time.perf_counter()
    train_args, _ = module.build_parser("train").parse_known_args(common + ["--image-set", config["train_set"]])
    module.run("train", train_args)
    t1 = time.perf_counter()
    test_args, _ = module.build_parser("test").parse_known_args(
        common + ["--image-set", config["test_set"], "--output-dir", output_dir]
    )
    module.run("test", test_args)
    results = read_json(Path(output_dir) / cls / "results.json", what="test results")
    metrics = extract(family, results)
    metrics.update({"train_seconds": round(t1 - t0, 1), "test_seconds": round(time.perf_counter() - t1, 1)})
    try:
        from ray import tune

        tune.report(metrics)
    except Exception:  # noqa: BLE001 - called outside a Tune session (tests): the return value is the report
        pass
    return metrics


def run(command: str, args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from zoomrl.core.io import write_json
    from zoomrl.experiments.sweep.table import METRICS, build_table, plot_table, write_csv

    family = args.family
    before: list[str] = []  # sweep flags given before FAMILY
    for key, value in vars(args).items():
        if key in ("family", "flags"):
            continue
        if value is True:
            before.append(f"--{key.replace('_', '-')}")
            continue
        for v in value if isinstance(value, list) else [value]:
            before += [f"--{key.replace('_', '-')}", str(v)]
    opts, rest = parse_sweep(family, before + list(args.flags))
    classes = classes_of(opts.classes)
    grid = parse_grid(opts.grid)
    rest = absolute_paths(rest)
    check_family_flags(family, rest)
    for flag, values in grid:
        for v in values:
            check_family_flags(family, [flag, v])
    # Data, sets and classes too, before Ray is imported: a wrong one is one line, not a traceback per trial.
    data_grid = [(f, vals) for f, vals in grid if f == "--data"]
    for values in itertools.product(*[vals for _, vals in data_grid]) if data_grid else [()]:
        check_data(
            family,
            rest + [tok for v in values for tok in ("--data", os.path.abspath(v))],
            classes,
            [opts.train_set, opts.test_set],
        )
    try:
        import ray
        from ray import tune
    except ImportError:
        raise ValueError("the sweep needs Ray Tune: pip install -e .[ray]") from None

    out = Path(opts.output_dir or f"results_sweep_{family}").resolve()
    models = Path(opts.model_dir or f"models_sweep_{family}").resolve()
    settings: list[tuple[str, list[str]]] = []
    for combo in itertools.product(*[[(f, v) for v in vals] for f, vals in grid]):
        label = ",".join(f"{f.lstrip('-')}={v}" for f, v in combo) or "default"
        settings.append((label, [tok for f, v in combo for tok in (f, v)]))
    trials = []
    for label, extra in settings:
        flags = rest + extra
        for cls in classes:
            trial_flags = list(flags)
            if "--feature-cache" in _flag_names(flags):
                # a feature cache file is one process's: give each trial its own folder
                trial_flags = [
                    f"{t}/{label}/{cls}"
                    if i > 0 and flags[i - 1] == "--feature-cache"
                    else f"{t}/{label}/{cls}"
                    if t.startswith("--feature-cache=")
                    else t
                    for i, t in enumerate(flags)
                ]
            trials.append(
                {
                    "family": family,
                    "class_object": cls,
                    "setting": label,
                    "flags": trial_flags,
                    "train_set": opts.train_set,
                    "test_set": opts.test_set,
                    "model_dir": str(models / label),
                    "output_dir": str(out / label),
                }
            )

    where = opts.address or f"a local Ray instance ({opts.num_cpus or os.cpu_count()} CPUs)"
    print(
        f"sweep: {len(trials)} trials ({family}, {len(classes)} classes x {len(settings)} settings) on {where}; "
        f"outputs in {out}"
    )
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    init = {
        "address": opts.address,
        "include_dashboard": False,
        "ignore_reinit_error": True,
        "log_to_driver": False,
        "logging_level": "error",
    }
    if opts.address is None:
        init.update(num_cpus=opts.num_cpus, object_store_memory=100 * 2**20)
    t0 = time.perf_counter()
    ray.init(**init)
    try:
        bar = tqdm(total=len(trials), desc="sweep", unit="trial", disable=opts.quiet)

        from zoomrl.experiments.sweep.progress import BAR, TrialProgress

        BAR[:] = [bar]
        tuner = tune.Tuner(
            tune.with_resources(trial_entry, {"cpu": opts.cpus_per_trial}),
            param_space={"trial": tune.grid_search(trials)},
            tune_config=tune.TuneConfig(
                max_concurrent_trials=opts.max_concurrent,
                trial_name_creator=trial_name,
                trial_dirname_creator=trial_name,
            ),
            run_config=tune.RunConfig(
                name="sweep", storage_path=str(out / "ray"), verbose=0, callbacks=[TrialProgress()]
            ),
        )
        grid_results = tuner.fit()
        bar.close()
        BAR.clear()
    finally:
        ray.shutdown()

    metrics = list(METRICS[family])
    rows = []
    failures = []
    for result in grid_results:
        trial = result.config["trial"]
        row: dict[str, Any] = {"setting": trial["setting"], "class": trial["class_object"]}
        if result.error is not None:
            line = str(result.error).strip().splitlines()
            msg = next((text for text in reversed(line) if text.strip()), type(result.error).__name__)
            row["status"] = f"failed: {msg[:200]}"
            failures.append(f"{trial['setting']}/{trial['class_object']}: {msg[:200]}")
            row.update({m: None for m in metrics})
        else:
            row["status"] = "ok"
            row.update({m: result.metrics.get(m) for m in metrics})
            row.update({k: result.metrics.get(k) for k in ("train_seconds", "test_seconds")})
        rows.append(row)
    order = {(t["setting"], t["class_object"]): i for i, t in enumerate(trials)}
    rows.sort(key=lambda r: order[(r["setting"], r["class"])])
    table = build_table(rows, metrics)
    columns = ["setting", "class", *metrics, "status", "train_seconds", "test_seconds"]
    write_csv(table, columns, out / "sweep.csv")
    write_json(
        out / "sweep.json",
        {
            "family": family,
            "classes": classes,
            "train_set": opts.train_set,
            "test_set": opts.test_set,
            "flags": rest,
            "grid": opts.grid,
            "metric": "VOC2007 11-point AP",
            "rows": table,
            "seconds": round(time.perf_counter() - t0, 1),
        },
    )
    plot_table(table, metrics, out / "sweep_ap.png", title=f"{family}: AP per class")
    for row in table:
        if row["class"] == "mean":
            print(
                f"sweep [{row['setting']}]: mean over {row['status']}: "
                + ", ".join(f"{m} {row[m]:.3f}" if row[m] is not None else f"{m} -" for m in metrics)
            )
    print(
        f"sweep: {len(trials) - len(failures)}/{len(trials)} trials finished in "
        f"{time.perf_counter() - t0:.0f} s; wrote {out / 'sweep.csv'}, {out / 'sweep.json'}, {out / 'sweep_ap.png'}"
    )
    if failures:
        raise ValueError(f"{len(failures)} trial(s) failed, first: {failures[0]}")


def trial_name(trial: Any) -> str:
    """A short name for a trial's folder: ``<setting>_<class>``."""
    t = trial.config["trial"]
    return f"{t['setting']}_{t['class_object']}"[:120].replace("/", "_")


def trial_entry(config: dict[str, Any]) -> dict[str, Any]:
    """Ray Tune's trainable: the grid point's settings are ``config["trial"]``."""
    return run_trial(config["trial"])
