"""The environments, registered with Gymnasium when this package is imported:

* ``zoomrl/Zoom-v0``: :class:`zoomrl.envs.zoom.ZoomEnv` (the hierarchical zoom of Bellver et al.);
* ``zoomrl/Active-v0``: :class:`zoomrl.envs.active.ActiveEnv` (the moving box of Caicedo and Lazebnik).

``gymnasium.make("zoomrl/Zoom-v0", image=..., gt_boxes=..., ...)`` after ``import zoomrl.envs``, or
``gymnasium.make("zoomrl.envs:zoomrl/Zoom-v0", ...)``, which imports it. The keyword arguments are the env's own.
Entry points are strings, so registering imports neither env (nor NumPy-heavy vision code) until one is made.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

ENV_IDS = {"zoomrl/Zoom-v0": "zoomrl.envs.zoom:ZoomEnv", "zoomrl/Active-v0": "zoomrl.envs.active:ActiveEnv"}

for _env_id, _entry_point in ENV_IDS.items():
    if _env_id not in registry:  # a reload must not warn about overriding our own registration
        register(id=_env_id, entry_point=_entry_point)
