#!/usr/bin/env python
"""Make a trainval/test split of a VOC-layout folder that has only one image set, without copying its data.

    python scripts/split_voc.py ROOT OUT [--image-set test] [--test-every 3]

OUT gets links to ROOT's ``Annotations`` and ``JPEGImages`` and its own ``ImageSets/Main/{trainval,test}.txt``:
every ``--test-every``-th image of ROOT's image set (in its order, starting with the first) goes to test, the others
to trainval. Used for the held-out check on ``../shared/data/voc2012-sample`` (README, "Tuning the recipe").
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root")
    p.add_argument("out")
    p.add_argument("--image-set", default="test")
    p.add_argument("--test-every", type=int, default=3)
    args = p.parse_args(argv)
    root, out = Path(args.root).resolve(), Path(args.out)
    listing = root / "ImageSets" / "Main" / f"{args.image_set}.txt"
    if not listing.is_file():
        print(f"error: {listing} not found (expected a VOC-layout folder with that image set)", file=sys.stderr)
        return 2
    if args.test_every < 2:
        print(f"error: --test-every must be at least 2, received {args.test_every}", file=sys.stderr)
        return 2
    ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
    (out / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for name in ("Annotations", "JPEGImages"):
        link = out / name
        if not link.exists():
            os.symlink(root / name, link)
    test = ids[:: args.test_every]
    trainval = [i for i in ids if i not in set(test)]
    for split, items in (("trainval", trainval), ("test", test)):
        (out / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(items) + "\n")
    print(f"{out}: {len(trainval)} trainval and {len(test)} test images from {listing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
