"""Super-resolution for renditions that need more pixels than the master has.

policy (when and how a rendition is upscaled: pure, read by the planner, srcset and the renderer),
registry (which ONNX models exist and which to use), runtime (the Upscaler: onnxruntime, CUDA when a
session really gets it, seamless tiles, speed estimates), packs and ncnn (`edge models add`). The
project's own models are in `models/`; the script that trains them is in /training. Import from the
modules themselves: importing this package loads no model runtime.
"""
