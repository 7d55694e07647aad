"""The feature models' fields, beside the models: what a value-based family's configuration composes.
:class:`FeatureConfig` holds what every VGG-16 based model reads (weights, batch, caches);
:class:`ZoomFeatureConfig` the hierarchical family's two models (Image Zooms, Pool45 Crops) and the pooled
descriptor; :class:`BoxFeatureConfig` the active family's four (VGG-16 of the box, pixels, RoIAlign, CLIP).
``feature_model(log)`` builds the configured model; the builders are imported there, so that reading a
configuration imports no framework.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zoomrl.core.config import ConfigBase, ConfigError, require_choice, require_finite, require_positive_int

VARIANTS = ("image_zooms", "pool45_crops")
FEATURES = ("vgg", "scratch", "roi", "clip")
Log = Callable[[str], None]
RUNNING_FIELDS = ("backbone_batch", "cache_mb", "feature_cache")
"""How the feature model runs, not what it computes: a resumed run may change them."""


@dataclass
class FeatureConfig(ConfigBase):
    backbone_batch: int = 16
    """Most windows per backbone call."""
    cache_mb: float = 3072
    """Memory for cached descriptors and maps."""
    feature_cache: str | None = None
    """Folder of an HDF5 feature cache reused across runs (None: memory only). One process at a time."""
    weights: str = "auto"
    """Backbone weights: auto, imagenet, hed, none or a path (see zoomrl/vision/backbone.py)."""

    def validate(self) -> Any:
        super().validate()
        require_positive_int("backbone_batch", self.backbone_batch)
        require_finite("cache_mb", self.cache_mb, low=0.0)
        return self


@dataclass
class ZoomFeatureConfig(FeatureConfig):
    MODEL_FIELDS = ("descriptor_pool",)
    variant: str = "image_zooms"
    """Feature model: ``image_zooms`` (VGG-16 on every region) or ``pool45_crops`` (VGG-16 once per image)."""
    descriptor_pool: int = 7
    """Average-pools the 7x7x512 region descriptor into ``g x g`` cells of 512 (7: none, the paper's 25088
    values; 2: 2048; 1: 512), so the first Dense layer has 12 to 49 times fewer weights to overfit."""
    pool45_max_side: int = 500
    """Pool45 Crops: images with a longer side are resized down before the single VGG-16 pass."""

    def validate(self) -> Any:
        super().validate()
        require_choice("variant", self.variant, VARIANTS)
        require_positive_int("pool45_max_side", self.pool45_max_side)
        if not isinstance(self.descriptor_pool, int) or not 1 <= self.descriptor_pool <= 7:
            raise ConfigError(
                f"descriptor_pool must be an integer in 1..7 (7: no pooling), received {self.descriptor_pool!r}"
            )
        return self

    def feature_model(self, log: Log) -> Any:
        """The VGG-16 feature model of ``variant`` (not yet pooled to ``descriptor_pool``)."""
        from zoomrl.vision.features import build_feature_model

        return build_feature_model(
            self.variant,
            self.weights,
            backbone_batch=self.backbone_batch,
            cache_mb=self.cache_mb,
            cache_dir=self.feature_cache,
            pool45_max_side=self.pool45_max_side,
            log=log,
        )


@dataclass
class BoxFeatureConfig(FeatureConfig):
    MODEL_FIELDS = ("features", "roi_max_side", "clip_preset")
    features: str = "vgg"
    """``vgg``: VGG-16 ``block5_pool`` of the box with context (the Image Zooms feature model and its cache);
    ``scratch``: the box's pixels at 84x84 through a CNN trained end to end (zoomrl/agents/dqn/scratch.py);
    ``roi``: VGG-16 once per (masked) image to ``block5_conv3``, each box by RoIAlign to 7x7x512
    (zoomrl/vision/roi.py); ``clip``: a CLIP image encoder's embedding of the box (zoomrl/vision/clip.py)."""
    roi_max_side: int = 500
    """``roi``: images whose longer side exceeds this are resized down before the backbone pass."""
    clip_preset: str = "clip_vit_base_patch32"
    """``clip``: the keras-hub CLIP preset whose image encoder describes the boxes."""

    def validate(self) -> Any:
        super().validate()
        require_choice("features", self.features, FEATURES)
        require_positive_int("roi_max_side", self.roi_max_side)
        if not isinstance(self.clip_preset, str) or not self.clip_preset.strip():
            raise ConfigError(f"clip_preset must be a keras-hub preset name or path, received {self.clip_preset!r}")
        return self

    def feature_model(self, log: Log) -> Any:
        """VGG-16 ``block5_pool`` of the context box (the Image Zooms model), the 84x84 pixels for ``scratch``,
        RoIAlign on one ``block5_conv3`` map per (masked) image for ``roi``, a CLIP image encoder's embedding for
        ``clip``."""
        if self.features == "scratch":
            from zoomrl.vision.pixels import PixelCrops

            return PixelCrops()
        if self.features == "roi":
            from zoomrl.vision.roi import build_roi_feature_model

            return build_roi_feature_model(
                self.weights, cache_mb=self.cache_mb, cache_dir=self.feature_cache, max_side=self.roi_max_side, log=log
            )
        if self.features == "clip":
            from zoomrl.vision.clip import build_clip_feature_model

            return build_clip_feature_model(
                self.clip_preset,
                random_weights=self.weights == "none",
                batch_size=self.backbone_batch,
                cache_mb=self.cache_mb,
                log=log,
            )
        from zoomrl.vision.features import build_feature_model

        return build_feature_model(
            "image_zooms",
            self.weights,
            backbone_batch=self.backbone_batch,
            cache_mb=self.cache_mb,
            cache_dir=self.feature_cache,
            log=log,
        )


__all__ = ["BoxFeatureConfig", "FEATURES", "FeatureConfig", "VARIANTS", "ZoomFeatureConfig"]
