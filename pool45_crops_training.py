"""Train the hierarchical zoom agent, Pool45 Crops (VGG-16 once per image, regions cropped from pool4/pool5).

Edit the constants below or override any of them with a flag (`python pool45_crops_training.py --help`).
Checkpoints: MODEL_DIR/<class>/epoch_<k>.weights.h5, training_state.npz, config.json, training_curves.png,
tensorboard/ (see zoomrl/core/checkpoint.py).
"""

import sys

# ---- constants a user may edit (each is also a flag) ---------------------------------------------------------
CLASS_OBJECT = "seven"  # the demo set's class; "aeroplane" for the paper's Pascal VOC experiments
SCALE_SUBREGION = 3 / 4  # 3/4: overlapping hierarchy (paper); 1/2: four quadrants plus the centre
NUMBER_OF_STEPS = 10  # most actions per search
EPOCHS = None  # None: the preset's (paper: 50)
PRESET = "paper"  # paper | fast (about an hour on a 2-core CPU) | tiny (smoke tests)
DATA = []  # VOC-layout roots, e.g. ["VOCdevkit/VOC2007", "VOCdevkit/VOC2012"]; empty: the embedded demo set
IMAGE_SET = "trainval"
WEIGHTS = "auto"  # auto | imagenet | hed | none | PATH (see zoomrl/vision/backbone.py)
MODEL_DIR = "models_pool45_crops"
MAX_IMAGES = None
SEED = 0
RESUME = False
SKIP_BAD = False
FEATURE_CACHE = None  # a folder for an HDF5 feature cache reused across runs
FORCE_TRIGGER = True  # paper 3.4: take the trigger when IoU >= 0.5 during training
# ----------------------------------------------------------------------------------------------------------------

if __name__ == "__main__":
    from zoomrl.experiments.cli import script_main

    sys.exit(script_main("hierarchical", "train", {**globals(), "MODEL": "pool45_crops"}))
