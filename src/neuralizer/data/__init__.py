"""neuralizer.data: anatomy sources (MNI-based and real people), synthesis, rendering, import."""

from neuralizer.data.mixed import MixedSliceSource
from neuralizer.data.people import PEOPLE_SPLITS
from neuralizer.data.real import PeopleConfig, PeopleSliceSource
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
from neuralizer.data.sources import HELDOUT_PROTOCOLS, TRAIN_PROTOCOLS, Anatomy, load_anatomy
from neuralizer.data.space import Grid, common_grid
from neuralizer.data.subject import ContrastProfile, SliceSource, SliceSubject
from neuralizer.data.subjects import SPLITS, SynthConfig, SynthSliceSource, subject_seed

__all__ = [
    "BRAIN_CLASSES",
    "HELDOUT_PROTOCOLS",
    "PEOPLE_SPLITS",
    "PROFILE_NAMES",
    "SPLITS",
    "TISSUE_CLASSES",
    "TRAIN_PROTOCOLS",
    "Anatomy",
    "ContrastProfile",
    "Grid",
    "MixedSliceSource",
    "PeopleConfig",
    "PeopleSliceSource",
    "RenderParams",
    "SliceSource",
    "SliceSubject",
    "SynthConfig",
    "SynthSliceSource",
    "apply_render",
    "common_grid",
    "load_anatomy",
    "render",
    "sample_profile",
    "sample_render_params",
    "subject_seed",
]
