"""Test the hierarchical zoom agent, Pool45 Crops (VGG-16 once per image, regions cropped from pool4/pool5), and
evaluate it.

Edit the constants below or override any of them with a flag (`python pool45_crops_testing.py --help`).
Outputs in OUTPUT_DIR/<class>/: results.json, detections.json, pr_curve.png, recall_vs_windows.png,
windows_per_object.png and, with BOOL_DRAW, pictures/<image>.png (see zoomrl/experiments/hierarchical/test.py).
"""

import sys

# ---- constants a user may edit (each is also a flag) ---------------------------------------------------------
CLASS_OBJECT = "seven"  # the demo set's class; "aeroplane" for the paper's Pascal VOC experiments
SCALE_SUBREGION = 3 / 4  # must match the training run
NUMBER_OF_STEPS = 10
PRESET = "paper"  # must match the training run's network size (paper and fast: 1024 units; tiny: 64)
DATA = []  # VOC-layout roots, e.g. ["VOCdevkit/VOC2007"]; empty: the embedded demo set
IMAGE_SET = "test"
WEIGHTS = "auto"
MODEL_DIR = "models_pool45_crops"
CHECKPOINT = None  # None: the last epoch in MODEL_DIR/<class>
OUTPUT_DIR = "results_pool45_crops"
BOOL_DRAW = False  # one PNG per image showing the search
ONLY_FIRST_OBJECT = False  # one search per image
MAX_IMAGES = None
SEED = 0
SKIP_BAD = False
FEATURE_CACHE = None
# ----------------------------------------------------------------------------------------------------------------

if __name__ == "__main__":
    from zoomrl.experiments.cli import script_main

    sys.exit(script_main("hierarchical", "test", {**globals(), "MODEL": "pool45_crops"}))
