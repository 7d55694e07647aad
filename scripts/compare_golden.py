"""Compare two trees of run outputs (``scripts/golden_runs.sh``): every JSON but ``config.json`` and
``latest.json`` must hold the same numbers and names, except timings and paths.

Usage: ``python scripts/compare_golden.py REF NEW``; prints each difference (10 a file at most) and
``N differences``; exits 0 when there is none, 1 otherwise, 2 on bad arguments.

A refactor that should not change results passes when the two trees come from the code before and after it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# Keys whose values differ from run to run or from tree to tree by nature (clocks, places, versions).
SKIPPED_KEYS = (
    "time",
    "second",
    "per_image",
    "wall",
    "elapsed",
    "duration",
    "path",
    "dir",
    "file",
    "date",
    "version",
    "host",
    "command",
    "argv",
    "speed",
    "/s",
)


def differences(a: Any, b: Any, where: str) -> list[str]:
    """Where ``a`` and ``b`` differ (dicts by key, lists by position, strings holding a path excepted)."""
    out: list[str] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if any(s in k.lower() for s in SKIPPED_KEYS):
                continue
            if k not in a or k not in b:
                out.append(f"{where}.{k}: only in {'REF' if k in a else 'NEW'}")
            else:
                out.extend(differences(a[k], b[k], f"{where}.{k}"))
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: lengths {len(a)} and {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            out.extend(differences(x, y, f"{where}[{i}]"))
    elif isinstance(a, str) and isinstance(b, str):
        if a != b and "/" not in a:
            out.append(f"{where}: {a!r} and {b!r}")
    elif a != b:
        out.append(f"{where}: {a!r} and {b!r}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not all(Path(p).is_dir() for p in argv):
        print("usage: python scripts/compare_golden.py REF NEW (two folders of run outputs)", file=sys.stderr)
        return 2
    ref, new = Path(argv[0]), Path(argv[1])
    total = 0
    for fa in sorted(ref.rglob("*.json")):
        rel = fa.relative_to(ref)
        if rel.name in ("config.json", "latest.json") or "previous_run" in rel.parts:
            continue
        fb = new / rel
        if not fb.exists():
            print(f"missing in NEW: {rel}")
            total += 1
            continue
        found = differences(json.loads(fa.read_text()), json.loads(fb.read_text()), str(rel))
        for line in found[:10]:
            print("differs:", line)
        total += len(found)
    print(f"{total} differences")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
