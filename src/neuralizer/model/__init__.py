"""The Neuralizer network, its fast inference path and checkpoints.

Names are imported on first use (PEP 562), so that ``neuralizer.model.limits`` (memory sizes,
torch-free) can be read by the fast input checks before torch is imported.
"""

from neuralizer.lazy import lazy_names

_LAZY = {
    "ModelConfig": "neuralizer.model.config",
    "Neuralizer": "neuralizer.model.network",
    "load": "neuralizer.model.checkpoint",
    "read_checkpoint": "neuralizer.model.checkpoint",
    "save_checkpoint": "neuralizer.model.checkpoint",
}


__getattr__ = lazy_names("neuralizer.model", _LAZY)

__all__ = list(_LAZY)
