"""Typed configurations: one dataclass per family, one source of defaults (preset, then flags).

A family's configuration is a ``@dataclass`` that inherits :class:`ConfigBase`. It gets:

* :meth:`ConfigBase.to_dict` / :meth:`ConfigBase.save` / :meth:`ConfigBase.load`: ``config.json`` round-trips;
  unknown keys in a loaded file are an error that names them (a typo never passes silently);
* :meth:`ConfigBase.from_preset`: the preset's values, then the explicit overrides (``None`` means "not given");
* :meth:`ConfigBase.validate`, which subclasses extend, with the checks below as helpers;
* :meth:`ConfigBase.model_fields`: the fields a trained network fixes, each class naming its own in
  ``MODEL_FIELDS`` (testing takes them from the run's ``config.json``).

Every check raises :class:`ConfigError` with one line naming the field, the value received and what was expected.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from zoomrl.core.io import read_json, write_json

T = TypeVar("T", bound="ConfigBase")


class ConfigError(ValueError):
    """A configuration value or combination that cannot run; the message names it."""


def require_positive_int(name: str, value: Any, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int,)) and not isinstance(value, bool) and (value >= 0 if allow_zero else value >= 1)
    if not ok:
        lo = "a non-negative" if allow_zero else "a positive"
        raise ConfigError(f"{name} must be {lo} integer, received {value!r}")


def require_finite(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """``value`` is a finite number within ``[low, high]`` (open ends where asked)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, received {value!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be finite, received {value!r}")
    bad_low = low is not None and (v <= low if low_open else v < low)
    bad_high = high is not None and (v >= high if high_open else v > high)
    if bad_low or bad_high:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise ConfigError(f"{name} must lie in {interval}, received {value!r}")


def require_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}; received {value!r}")


@dataclasses.dataclass
class ConfigBase:
    """Base of every family's configuration dataclass (see the module docstring)."""

    MODEL_FIELDS: ClassVar[tuple[str, ...]] = ()
    """This class's own fields (or its bases') that a trained network fixes: its inputs, outputs and layers."""

    def validate(self: T) -> T:
        """Check every field; subclasses call ``super().validate()`` and add their own checks."""
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes).validate()

    def save(self, path: str | os.PathLike) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def model_fields(cls) -> tuple[str, ...]:
        """Every field a trained network fixes (the ``MODEL_FIELDS`` of ``cls`` and its bases), in field order."""
        named = {name for klass in cls.__mro__ for name in vars(klass).get("MODEL_FIELDS", ())}
        return tuple(f.name for f in dataclasses.fields(cls) if f.name in named)

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "configuration") -> T:
        """The configuration in ``data``; unknown keys are an error naming them and ``source``."""
        unknown = sorted(set(data) - cls.field_names())
        if unknown:
            raise ConfigError(f"{source}: unknown configuration keys {', '.join(unknown)} for {cls.__name__}")
        return cls(**dict(data)).validate()

    @classmethod
    def load(cls: type[T], path: str | os.PathLike) -> T:
        """Read a ``config.json``; a damaged file is an error naming it."""
        data = read_json(path, what="configuration")
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object of configuration fields, found {type(data).__name__}")
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_preset(cls: type[T], presets: Mapping[str, Mapping[str, Any]], preset: str, **overrides: Any) -> T:
        """The preset's values, then every override that is not ``None``; validated."""
        if preset not in presets:
            raise ConfigError(f"unknown preset '{preset}'; expected one of {', '.join(sorted(presets))}")
        values = dict(presets[preset])
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "preset" in cls.field_names():
            values["preset"] = preset
        unknown = sorted(set(values) - cls.field_names())
        if unknown:
            raise ConfigError(f"unknown configuration keys {', '.join(unknown)} for {cls.__name__}")
        return cls(**values).validate()


__all__ = ["ConfigBase", "ConfigError", "require_choice", "require_finite", "require_positive_int", "json"]
