"""Super-resolution for renditions that need more pixels than the master has.

`registry` says which ONNX models exist and which one to use; `runtime.Upscaler` runs them with
onnxruntime (CUDA when a session really gets it, else CPU), in seamless tiles, and estimates how
long a run will take on this machine. The project's own models and the script that trains them
are in `models/` and `training/`.
"""

from origin.superres.registry import (
    ModelSpec,
    RegistryError,
    available_models,
    choose_model,
    load_registry,
    plan_scales,
)
from origin.superres.runtime import UpscaleCancelled, Upscaler, aligned_upscale

__all__ = [
    "ModelSpec",
    "RegistryError",
    "UpscaleCancelled",
    "Upscaler",
    "aligned_upscale",
    "available_models",
    "choose_model",
    "load_registry",
    "plan_scales",
]
