"""neuralizer.data: anatomy sources, virtual-subject synthesis, rendering, import of scans."""

from neuralizer.data.render import (
    BRAIN_CLASSES,
    PROFILE_NAMES,
    TISSUE_CLASSES,
    RenderParams,
    apply_render,
    render,
    sample_profile,
    sample_render_params,
)
from neuralizer.data.subject import ContrastProfile, SliceSource, SliceSubject

__all__ = [
    "BRAIN_CLASSES",
    "PROFILE_NAMES",
    "TISSUE_CLASSES",
    "ContrastProfile",
    "RenderParams",
    "SliceSource",
    "SliceSubject",
    "apply_render",
    "render",
    "sample_profile",
    "sample_render_params",
]
