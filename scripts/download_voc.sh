#!/usr/bin/env bash
# Fetch and unpack the official Pascal VOC2007 (trainval + test) and VOC2012 (trainval) tarballs into DIR
# (default: data/VOCdevkit), giving DIR/VOC2007 and DIR/VOC2012 in the layout the scripts read.
# Needs internet and about 4 GB of disk. Already unpacked sets are skipped.
set -euo pipefail
DIR=${1:-data/VOCdevkit}
BASE=${VOC_MIRROR:-http://host.robots.ox.ac.uk/pascal/VOC}
mkdir -p "$DIR"
fetch() {  # url, marker directory
  local url=$1 marker=$2 file
  file="$DIR/$(basename "$url")"
  if [ -e "$marker" ]; then echo "already there: $marker"; return; fi
  if [ ! -s "$file" ]; then
    echo "downloading $url"
    curl -fL --retry 3 -o "$file.part" "$url" && mv "$file.part" "$file"
  fi
  echo "unpacking $file"
  tar -xf "$file" -C "$DIR" --strip-components=1
}
fetch "$BASE/voc2007/VOCtrainval_06-Nov-2007.tar" "$DIR/VOC2007/Annotations"
fetch "$BASE/voc2007/VOCtest_06-Nov-2007.tar" "$DIR/VOC2007/ImageSets/Main/aeroplane_test.txt"
fetch "$BASE/voc2012/VOCtrainval_11-May-2012.tar" "$DIR/VOC2012/Annotations"
echo "done: $DIR/VOC2007 and $DIR/VOC2012"
