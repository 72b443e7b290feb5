"""``--preset NAME``: built-in context pairs for users who have no examples.

The pairs come from the real people of the embedded data (:mod:`neuralizer.data.real`): the
training people, each with a small random pose, rendered T1-like (clean renders of their own
anatomy), on the 2 mm MNI common grid; ``neuralizer predict`` registers them to the target
(``--align affine`` unless told otherwise). Structure presets take a skull-stripped T1-like input;
``skullstrip`` takes a head with skull, and never uses a person whose field of view is cropped
near the brain.
"""

from __future__ import annotations

from collections.abc import Callable

import nibabel as nib
import numpy as np

from neuralizer.infer.io import Loaded

# FreeSurfer aseg label values.
_HIPPOCAMPUS = (17, 53)
_THALAMUS = (10, 49)
# Tissue classes (neuralizer.data.render.TISSUE_CLASSES): cerebral and cerebellar white matter;
# cortex, deep grey nuclei, hippocampus and amygdala, cerebellar cortex.
_WHITE_MATTER = (3, 7)
_GREY_MATTER = (2, 4, 5, 6)
_NOISE_SD = 0.08
#: Examples a preset can supply: the 13 training people, each once, less person 3 for
#: skull stripping (its field of view ends near the brain); 12 for every preset alike.
MAX_EXAMPLES = 12

Volumes = dict[str, np.ndarray]


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _denoise_input(v: Volumes, seed: int) -> np.ndarray:
    clean = _f32(v["t1_brain"])
    noise = np.random.default_rng([7, seed]).normal(0.0, _NOISE_SD, clean.shape)
    return np.clip(clean + noise, 0.0, 1.0).astype(np.float32)


#: name -> (description, input of a subject, output of a subject); a subject is the
#: :func:`example_volumes` of a person.
PRESETS: dict[str, tuple[str, Callable, Callable]] = {
    "skullstrip": (
        "brain mask of a head with skull",
        lambda v, s: _f32(v["head"]),
        lambda v, s: _f32(v["brain_mask"]),
    ),
    "white-matter": (
        "white matter of a skull-stripped T1",
        lambda v, s: _f32(v["t1_brain"]),
        lambda v, s: _f32(np.isin(v["labels__tissue"], _WHITE_MATTER)),
    ),
    "grey-matter": (
        "grey matter of a skull-stripped T1",
        lambda v, s: _f32(v["t1_brain"]),
        lambda v, s: _f32(np.isin(v["labels__tissue"], _GREY_MATTER)),
    ),
    "hippocampus": (
        "both hippocampi of a skull-stripped T1",
        lambda v, s: _f32(v["t1_brain"]),
        lambda v, s: _f32(np.isin(v["labels__aseg"], _HIPPOCAMPUS)),
    ),
    "thalamus": (
        "both thalami of a skull-stripped T1",
        lambda v, s: _f32(v["t1_brain"]),
        lambda v, s: _f32(np.isin(v["labels__aseg"], _THALAMUS)),
    ),
    "denoise": (
        "denoising of a skull-stripped T1 (Gaussian noise)",
        _denoise_input,
        lambda v, s: _f32(v["t1_brain"]),
    ),
}


def example_volumes(source, index: int) -> tuple[Volumes, int]:
    """(volumes, seed) of subject ``index`` of a people source, with its clean T1-like renders
    "t1_brain" (skull-stripped) and "head" (float32 in [0, 1]; one T1 profile per subject)."""
    from neuralizer.data.render import render_volume, sample_profile

    volumes, meta = source.volumes(index)
    seed = int(meta["seed"])
    profile = sample_profile("t1", np.random.default_rng([13, seed]))
    classes, brain = volumes["render_classes"], volumes["brain_mask"]
    out = dict(volumes)
    out["t1_brain"] = render_volume(classes, brain, profile, source.voxel_size_mm)
    out["head"] = render_volume(classes, brain, profile, source.voxel_size_mm, head=True)
    return out, seed


def people_source(split: str, n_subjects: int):
    """The people of ``split`` on the 2 mm grid (raises ValueError without the data extra)."""
    try:
        from neuralizer.data.real import PeopleConfig, PeopleSliceSource
    except ImportError:
        raise ValueError("presets need the data extra: pip install 'neuralizer[data]'") from None
    return PeopleSliceSource(split, n_subjects, PeopleConfig(voxel_size_mm=2.0))


def example_indices(name: str, source, n_examples: int) -> list[int]:
    """The first ``n_examples`` subjects of ``source`` that preset ``name`` may use."""
    excluded = source.excluded("skull_stripping") if name == "skullstrip" else frozenset()
    indices = [i for i in range(len(source)) if i not in excluded][:n_examples]
    if len(indices) < n_examples:
        raise ValueError(f"preset {name!r} has {len(indices)} example people, not {n_examples}")
    return indices


def describe_presets() -> str:
    return "; ".join(f"{name}: {text}" for name, (text, _, _) in PRESETS.items())


def preset_context(name: str, n_context: int = 4) -> tuple[list[Loaded], list[Loaded]]:
    """(context inputs, context outputs) of preset ``name`` from ``n_context`` training people."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {describe_presets()}")
    if not 1 <= n_context <= MAX_EXAMPLES:
        raise ValueError(f"a preset supplies 1 to {MAX_EXAMPLES} context pairs, not {n_context}")
    source = people_source("train", 2 * MAX_EXAMPLES)
    affine = source.grid.affine
    _, make_in, make_out = PRESETS[name]
    c_in, c_out = [], []
    for index in example_indices(name, source, n_context):
        volumes, seed = example_volumes(source, index)
        person = source.person(index)
        for items, make, kind in ((c_in, make_in, "in"), (c_out, make_out, "out")):
            data = make(volumes, seed)
            label = f"preset {name} person {person:02d} ({kind})"
            items.append(Loaded(label, data[None], nib.Nifti1Image(data, affine)))
    return c_in, c_out


def preset_scan(name: str) -> Loaded:
    """The input of preset ``name`` for the first test person (never trained on, never one of
    the examples): a built-in scan to try a preset on."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {describe_presets()}")
    source = people_source("test", 1)
    volumes, seed = example_volumes(source, 0)
    data = PRESETS[name][1](volumes, seed)
    label = f"preset {name} test person {source.person(0):02d}"
    return Loaded(label, data[None], nib.Nifti1Image(data, source.grid.affine))
