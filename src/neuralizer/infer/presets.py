"""``--preset NAME``: built-in context pairs for users who have no examples.

The pairs come from the embedded data engine's *test* split (virtual subjects never used in
training), on the 2 mm MNI common grid; ``neuralizer predict`` registers them to the target
(``--align affine`` unless told otherwise). Structure presets take a skull-stripped T1-like input;
``skullstrip`` takes a head with skull.
"""

from __future__ import annotations

from collections.abc import Callable

import nibabel as nib
import numpy as np

from neuralizer.infer.io import Loaded

# Desikan-Killiany (FreeSurfer aseg) label values.
_HIPPOCAMPUS = (17, 53)
_THALAMUS = (10, 49)
_NOISE_SD = 0.08

Volumes = dict[str, np.ndarray]


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _denoise_input(v: Volumes, seed: int) -> np.ndarray:
    clean = _f32(v["images__t1_brain"])
    noise = np.random.default_rng([7, seed]).normal(0.0, _NOISE_SD, clean.shape)
    return np.clip(clean + noise, 0.0, 1.0).astype(np.float32)


#: name -> (description, input of a subject, output of a subject)
PRESETS: dict[str, tuple[str, Callable, Callable]] = {
    "skullstrip": (
        "brain mask of a head with skull",
        lambda v, s: _f32(v["images__head"]),
        lambda v, s: _f32(v["masks__head_brain"]),
    ),
    "white-matter": (
        "white matter of a skull-stripped T1",
        lambda v, s: _f32(v["images__t1_brain"]),
        lambda v, s: _f32(_f32(v["images__wm_prob"]) > 0.5),
    ),
    "grey-matter": (
        "grey matter of a skull-stripped T1",
        lambda v, s: _f32(v["images__t1_brain"]),
        lambda v, s: _f32(_f32(v["images__gm_prob"]) > 0.5),
    ),
    "hippocampus": (
        "both hippocampi of a skull-stripped T1",
        lambda v, s: _f32(v["images__t1_brain"]),
        lambda v, s: _f32(np.isin(v["labels__desikan_killiany"], _HIPPOCAMPUS)),
    ),
    "thalamus": (
        "both thalami of a skull-stripped T1",
        lambda v, s: _f32(v["images__t1_brain"]),
        lambda v, s: _f32(np.isin(v["labels__desikan_killiany"], _THALAMUS)),
    ),
    "denoise": (
        "denoising of a skull-stripped T1 (Gaussian noise)",
        _denoise_input,
        lambda v, s: _f32(v["images__t1_brain"]),
    ),
}


def describe_presets() -> str:
    return "; ".join(f"{name}: {text}" for name, (text, _, _) in PRESETS.items())


def preset_context(name: str, n_context: int = 4) -> tuple[list[Loaded], list[Loaded]]:
    """(context inputs, context outputs) of preset ``name`` from ``n_context`` test subjects."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {describe_presets()}")
    if not 1 <= n_context <= 16:
        raise ValueError(f"a preset supplies 1 to 16 context pairs, not {n_context}")
    try:
        from neuralizer.data.subjects import SynthConfig, SynthSliceSource
    except ImportError:
        raise ValueError("presets need the data extra: pip install 'neuralizer[data]'") from None
    source = SynthSliceSource("test", n_context, SynthConfig(voxel_size_mm=2.0))
    affine = source.grid.affine
    _, make_in, make_out = PRESETS[name]
    c_in, c_out = [], []
    for index in range(n_context):
        volumes, meta = source.volumes(index)
        seed = int(meta["seed"])
        for items, make, kind in ((c_in, make_in, "in"), (c_out, make_out, "out")):
            data = make(volumes, seed)
            label = f"preset {name} subject {seed} ({kind})"
            items.append(Loaded(label, data[None], nib.Nifti1Image(data, affine)))
    return c_in, c_out
