"""Flags generated from the configuration dataclasses, and renamed flags that keep their old name working.

A field of a family's ``Config`` becomes ``--field-name`` with the field's type (a boolean: ``--x/--no-x``), its
documentation (the string under the field) as help, and ``None`` as the parsed default, so that "not given" leaves
the preset's value (:meth:`zoomrl.core.config.ConfigBase.from_preset`). ``--help`` shows the value in force under
the ``--preset`` given (:class:`PresetAwareParser`; the default preset without one): ``(default: the preset's;
paper: 1e-06)``.

One vocabulary across families (:data:`RENAMED`; :func:`renamed_flag` keeps the old spellings, with a one-line
note): ``--data`` (was glimpse's and patchdrop's ``--dataset``), ``--class-object`` (was glimpse's ``--voc-class``),
``--draw-max`` (was patchdrop's ``--max-pictures``).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from zoomrl.experiments.common import non_negative_int, positive_int

DQN_TRAIN_FLAGS = (
    "learning_rate",
    "train_every",
    "minibatch",
    "replay_size",
    "hidden_units",
    "target_update_every",
    "double_dqn",
    "dueling",
    "n_step",
    "demo_ratio",
    "margin_weight",
    "bc_epochs",
    "descriptor_scale",
)
"""The DQN flags every value-based family (hierarchical, active) takes in training."""

NON_NEGATIVE = frozenset(
    {"target_update_every", "bc_epochs", "bc_minibatch", "learning_starts", "epochs"}
    | {"clutter", "data_seed", "train_limit", "test_limit"}  # patchdrop's (0: none, or all images)
    | {"test_size", "baseline_epochs", "draw_max", "augment_shift"}  # glimpse's (0: one per image, none, off)
)
"""Integer fields where 0 means "none" (the others must be positive), as the configs' ``validate`` checks."""


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The string under each field of the dataclass ``cls`` and its bases (a subclass's wins), whitespace joined.

    Python keeps no attribute docstrings at run time, so they are read from the classes' source."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # no source (a frozen build): help without the text
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(after.value.value.replace("``", "").split())
    return docs


def _first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence ("et al. 2016" does not)."""
    match = re.search(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)\. ", text)
    return (text if match is None else text[: match.start()]).rstrip(".")


def _flag_type(name: str, annotation: Any) -> Any:
    """The argparse type of a field from its annotation (a string under ``from __future__ import annotations``;
    ``float | None`` is a float that may stay unset); None for a boolean."""
    kind = str(getattr(annotation, "__name__", annotation)).split("|")[0].strip()
    if kind == "bool":
        return None
    if kind == "int":
        return non_negative_int if name in NON_NEGATIVE else positive_int
    return float if kind == "float" else str


def add_config_flags(
    parser: argparse.ArgumentParser,
    config_cls: type,
    names: Iterable[str],
    presets: Mapping[str, Mapping[str, Any]],
    preset: str,
    metavars: Mapping[str, str] | None = None,
    default_text: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[str, ...]:
    """Add ``--name`` for each configuration field of ``names``; returns the names (the overrides to read back).

    ``preset`` is the default preset: its value of each field is the one ``--help`` shows; ``default_text`` the
    help's default instead (at test time: the run's saved value). ``defaults``: fields whose parsed default is
    given (a top-level script's edited constant), shown as such. ``options``: a field's argparse keywords that its
    annotation does not give (``type``, ``choices``)."""
    annotations = {f.name: f.type for f in dataclasses.fields(config_cls)}
    in_force = config_cls.from_preset(presets, preset)
    docs = field_docs(config_cls)
    added = []
    for name in names:
        if name not in annotations:
            raise ValueError(f"{config_cls.__name__} has no field {name!r} to make a flag of")
        text = _first_sentence(docs.get(name, name.replace("_", " ")))
        value = (defaults or {}).get(name)
        default = default_text or f"the preset's; {preset}: {getattr(in_force, name)!r}"
        help_text = f"{text} (default: {default if value is None else repr(value)})".replace("%", "%%")
        kind = _flag_type(name, annotations[name])
        flag = "--" + name.replace("_", "-")
        if kind is None:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=value, help=help_text)
        else:
            more = {"type": kind, "metavar": (metavars or {}).get(name), **(options or {}).get(name, {})}
            parser.add_argument(flag, dest=name, default=value, help=help_text, **more)
        added.append(name)
    return tuple(added)


class _Renamed(argparse.Action):
    """An old flag spelling: stores as the new one does, after one line on stderr."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str = "", **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(f"note: {option_string} is deprecated, use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def renamed_flag(parser: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs: Any) -> None:
    """Accept ``old`` (hidden from ``--help``) for the flag now called ``new`` that stores into ``dest``;
    ``kwargs`` are the new flag's ``type``/``choices``, so the old spelling checks its value the same way."""
    parser.add_argument(
        old, dest=dest, action=_Renamed, new=new, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs
    )


RENAMED = {
    "dataset": ("--data", "--dataset"),
    "voc_class": ("--class-object", "--voc-class"),
    "max_pictures": ("--draw-max", "--max-pictures"),
}
"""Configuration fields whose flag has the name every family uses: (the flag, its old spelling)."""


def add_renamed_field(
    parser: argparse.ArgumentParser, name: str, help_text: str, dest: str | None = None, **kwargs: Any
) -> None:
    """The flag of :data:`RENAMED` for the field ``name`` (stored in ``dest``, default ``name``; not given: None)
    and its old spelling (:func:`renamed_flag`); ``kwargs`` (``type``, ``choices``) check both alike."""
    new, old = RENAMED[name]
    parser.add_argument(new, dest=dest or name, default=None, help=help_text, **kwargs)
    renamed_flag(parser, old, new, dest or name, **kwargs)


TRUE_FALSE = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def old_booleans(args: Sequence[str], config_cls: type) -> list[str]:
    """``--x true|false`` (also ``--x=no``...), the old spelling of a boolean field's flag, as ``--x`` / ``--no-x``,
    with one line of note; a value that is not one of them is left for the parser to refuse."""
    flags = {"--" + f.name.replace("_", "-") for f in dataclasses.fields(config_cls) if f.type == "bool"}
    out, i = [], 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        if not eq and i + 1 < len(args):
            value = args[i + 1]
        if name in flags and value.strip().lower() in TRUE_FALSE:
            i += 1 if eq else 2
            new = name if TRUE_FALSE[value.strip().lower()] else "--no-" + name[2:]
            print(f"note: {name} {value} is deprecated, use {new}", file=sys.stderr)
            out.append(new)
        else:
            out.append(args[i])
            i += 1
    return out


class PresetAwareParser(argparse.ArgumentParser):
    """A parser whose ``--help`` shows the values in force for the ``--preset`` given (and for the other flags of
    ``shown``, glimpse's ``--task``): parsing first reads those flags and, when they are not the values this parser
    was made for (``shown``), a parser made for them (``rebuild(**values)``) parses. ``choices``: each such flag's
    values. ``config_cls``: its boolean fields also read the old ``--x true|false`` (:func:`old_booleans`)."""

    def __init__(
        self,
        shown: Mapping[str, str],
        choices: Mapping[str, Sequence[str]],
        rebuild: Callable[..., argparse.ArgumentParser],
        config_cls: type | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.shown, self.choices, self.rebuild, self.config_cls = dict(shown), choices, rebuild, config_cls

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        if self.config_cls is not None:
            args = old_booleans(args, self.config_cls)
        pre = argparse.ArgumentParser(add_help=False, exit_on_error=False)
        for name, values in self.choices.items():
            pre.add_argument("--" + name, choices=values)
        try:
            given = vars(pre.parse_known_args(args)[0])
        except argparse.ArgumentError:  # this parser reports it
            given = {}
        wanted = {name: given.get(name) or value for name, value in self.shown.items()}
        if wanted == self.shown:
            return super().parse_known_args(args, namespace)
        other = self.rebuild(**wanted)
        other.prog = self.prog
        return other.parse_known_args(args, namespace)
