"""The resource plan of a prediction: every large array it will hold, estimated before the work
and checked against ``max_memory`` (default: :func:`~neuralizer.model.limits.default_memory_limit`,
the memory available, at most a fraction of the machine's). Torch-free.

It is made three times, each time from what is known by then, with the one function
:func:`prediction_memory`: from the files' headers before any input is decoded (``neuralizer
predict``, folder mode, the app: :func:`check_files`), and with the decoded inputs once the model
is known (``predict``, ``predict_volume``, every path: :func:`check_prediction`). It counts

- the decoded inputs (float32), and the transient copy of the largest while it is decoded;
- the working grid of a volume: the target, the L resampled context pairs, their slices and the
  model-ready (padded) copies, the M maps and their s.d., the maps resampled back, per view;
- the model's weights and one forward pass (``model.limits.estimate_forward_bytes``).

A volume whose field of view exceeds :data:`MAX_FIELD_OF_VIEW_MM` along an axis is refused from
its header: its voxel sizes are wrong (a 24³ file of 1e5 mm voxels asks for a grid of millions of
slices).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuralizer.infer.io import NIFTI, check_file, check_npy_size, suffix
from neuralizer.infer.paths import Spec, input_files, spec_name
from neuralizer.model.config import ModelConfig
from neuralizer.model.limits import ResourcePlan, estimate_forward_bytes
from neuralizer.model.metadata import AXES, DEFAULT_WEIGHTS, Geometry, read_metadata

#: A head is ~250 mm, a whole-body MRI field of view ~2 m: beyond, the header's voxel sizes (or
#: affine) are wrong.
MAX_FIELD_OF_VIEW_MM = 2000.0
_FLOAT = 4  # bytes of a float32 value


@dataclass(frozen=True)
class InputSize:
    """What an input will occupy: ``spatial`` shape (H, W or X, Y, Z), ``channels``, the
    voxel-to-world ``affine`` of a volume (None for 2D), and bytes ``held`` once decoded
    (float32) and ``peak`` extra while decoding (the file's own type, scaling in float64)."""

    name: str
    spatial: tuple[int, ...]
    channels: int
    affine: np.ndarray | None = None
    held: int = 0
    peak: int = 0

    @property
    def voxels(self) -> int:
        return math.prod(self.spatial)


def _nifti_size(path: Path) -> InputSize:
    import nibabel as nib

    try:
        image = nib.load(str(path))  # the header only: the data stay on disk, compressed
        shape = tuple(int(s) for s in image.shape)
        itemsize = image.get_data_dtype().itemsize
    except Exception as error:  # nibabel raises many types for damaged files
        raise ValueError(f"{path} is not a readable NIfTI file ({error})") from None
    spatial, channels = shape[:3], (shape[3] if len(shape) == 4 else 1)
    voxels = math.prod(shape)
    return InputSize(str(path), spatial, channels, np.asarray(image.affine, np.float64),
                     voxels * _FLOAT, voxels * (itemsize + 8))  # fmt: skip


def _dicom_size(path: Path) -> InputSize:
    from neuralizer.infer.dicom import dicom_header

    shape, affine = dicom_header(path)
    voxels = math.prod(shape)
    return InputSize(str(path), shape, 1, affine, voxels * _FLOAT, voxels * (8 + 8))


def _npy_size(path: Path) -> InputSize:
    try:
        check_npy_size(path)
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            read_header = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }[version]
            shape, _, dtype = read_header(file)
    except Exception as error:
        raise ValueError(f"{path} is not a readable .npy file ({error})") from None
    voxels = math.prod(shape)
    spatial = tuple(shape[-2:]) if len(shape) >= 2 else tuple(shape)
    channels = shape[0] if len(shape) == 3 else 1
    return InputSize(str(path), spatial, channels, None, voxels * _FLOAT,
                     voxels * dtype.itemsize)  # fmt: skip


def _png_size(path: Path) -> InputSize:
    from PIL import Image

    try:
        with warnings.catch_warnings():  # we check the size ourselves, below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as picture:  # reads the header only
                width, height = picture.size
                bands = len(picture.getbands())
    except Exception as error:
        raise ValueError(f"{path} is not a readable .png file ({error})") from None
    pixels = width * height
    return InputSize(str(path), (height, width), bands, None, pixels * bands * _FLOAT,
                     pixels * 3 * (1 + _FLOAT))  # fmt: skip


def input_size(spec: Spec) -> InputSize:
    """The :class:`InputSize` of one input from its files' headers (nothing decoded)."""
    sizes = []
    for path in input_files(spec):
        check_file(path)
        kind = suffix(path)
        if path.is_dir():  # a DICOM series (check_file)
            sizes.append(_dicom_size(path))
        elif kind in NIFTI:
            sizes.append(_nifti_size(path))
        elif kind == ".npy":
            sizes.append(_npy_size(path))
        elif kind == ".png":
            sizes.append(_png_size(path))
        else:  # read_input names the problem
            raise ValueError(f"{path}: unsupported file type")
    first = sizes[0]
    return InputSize(spec_name(spec), first.spatial, sum(s.channels for s in sizes),
                     first.affine, sum(s.held for s in sizes),
                     max(s.peak for s in sizes))  # fmt: skip


def loaded_size(loaded: Any) -> InputSize:
    """The :class:`InputSize` of a :class:`~neuralizer.infer.io.Loaded` input (C×spatial)."""
    data = loaded.data
    affine = None if loaded.image is None else np.asarray(loaded.image.affine, np.float64)
    return InputSize(loaded.name, tuple(data.shape[1:]), data.shape[0], affine, data.nbytes)


def field_of_view(size: InputSize) -> np.ndarray:
    """Extent in world mm (R, A, S) of a volume's voxel box."""
    corners = np.array(np.meshgrid(*[[-0.5, s - 0.5] for s in size.spatial], indexing="ij"))
    corners = corners.reshape(3, -1).T
    world = corners @ size.affine[:3, :3].T
    return world.max(axis=0) - world.min(axis=0)


def check_field_of_view(size: InputSize) -> None:
    """ValueError if a volume spans more than :data:`MAX_FIELD_OF_VIEW_MM` along an axis."""
    if size.affine is None:
        return
    extent = field_of_view(size)
    if not np.isfinite(extent).all() or extent.max() > MAX_FIELD_OF_VIEW_MM:
        spacing = np.linalg.norm(size.affine[:3, :3], axis=0)
        raise ValueError(
            f"{size.name} spans {extent.max():.4g} mm (voxels of "
            f"{' × '.join(f'{v:.4g}' for v in spacing)} mm), more than any scan "
            f"({MAX_FIELD_OF_VIEW_MM:g} mm): its header's voxel sizes (pixdim) or affine are "
            "wrong; fix them"
        )


@dataclass(frozen=True)
class ModelSize:
    """What a prediction needs to know of its model before loading it."""

    config: ModelConfig
    geometry: Geometry
    weight_bytes: int


def model_size(model: Any) -> ModelSize:
    """The :class:`ModelSize` of a ready model, a checkpoint path or None (the shipped model),
    read from the checkpoint's header (no tensor loaded, no torch imported)."""
    if model is not None and not isinstance(model, str | Path):
        geometry = getattr(model, "geometry", None)
        if geometry is None:
            geometry = Geometry.inferred(getattr(model, "provenance", None))
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        return ModelSize(model.config, geometry, weights)
    path = DEFAULT_WEIGHTS if model is None else Path(model)
    if model is None and not path.is_file():  # the load names the problem
        return ModelSize(ModelConfig(), Geometry(), 0)
    metadata = read_metadata(path)
    return ModelSize(metadata.model, metadata.geometry, path.stat().st_size)


def working_slices(
    target: InputSize, voxel_size_mm: float, axis: int, *, common_space: bool = False
) -> int:
    """Upper bound of the working grid's slices along ``axis``: the grid spans the target's
    foreground, which lies inside its voxel box. In the common space (``align="affine"``) that
    box may be turned and scaled (down to the registration's smallest scale) before it is cut
    to the training crop along MNI's axes, so the bound is the smaller of the box's diagonal
    so scaled and the crop."""
    extent = field_of_view(target)
    if not common_space:
        return int(math.ceil(extent[axis] / voxel_size_mm)) + 5
    from neuralizer.data.mni import SCALE_RANGE
    from neuralizer.data.space import CROP_MM

    longest = min(float(np.linalg.norm(extent)) / SCALE_RANGE[0], CROP_MM[axis])
    return int(math.ceil(longest / voxel_size_mm)) + 5


def prediction_memory(
    target: InputSize,
    context: Sequence[tuple[InputSize, InputSize]],
    model: ModelSize,
    options: Any,
    n_maps: int = 1,
) -> ResourcePlan:
    """The :class:`ResourcePlan` of one prediction (``options``: a PredictOptions)."""
    config, geometry = model.config, model.geometry
    n_context = len(context)
    inputs = [target, *(s for pair in context for s in pair)]
    channels, cin = target.channels, config.in_channels
    spread = 2 if options.ensemble > 1 else 1
    multiple = config.size_multiple
    if target.affine is not None:  # a volume, slice by slice on the working grid
        check_field_of_view(target)
        for size in inputs[1:]:
            check_field_of_view(size)
        height, width = geometry.image_size
        views = AXES if options.axis == "all" else (options.axis,)  # AXES: in voxel-axis order
        common = getattr(options, "align", "none") in ("affine", "deformable")
        slices = [working_slices(target, geometry.voxel_size_mm, AXES.index(v),
                                 common_space=common) for v in views]  # fmt: skip
        grid = max(slices) * height * width
        # target, context pairs (resampled, as slices, model-ready with padded channels)
        per_view = grid * (2 * channels + n_context * (2 * (channels + 1) + cin) + cin)
        per_view += grid * n_maps * (1 + spread)  # maps (and s.d.) on the grid
        work = _FLOAT * (per_view + len(views) * target.voxels * n_maps * spread * 2)
        batch = min(options.batch_size, max(slices))
    else:  # a 2D image, resized to the model's pixel size
        scale = (1.0 if options.spacing is None else options.spacing) / geometry.voxel_size_mm
        height, width = (max(1, round(s * scale)) for s in target.spatial)
        pixels = height * width + target.voxels  # at the model's pixel size and the target's
        work = _FLOAT * pixels * ((n_context + 1) * (cin + 2) + 2 * n_maps * spread)
        batch = 1
    height, width = (-(-s // multiple) * multiple for s in (height, width))
    forward = estimate_forward_bytes(config.channels, cin, config.out_channels, batch,
                                     n_context, height, width, path="fast")  # fmt: skip
    parts = {
        "inputs": sum(s.held for s in inputs) + max(s.peak for s in inputs),
        "working arrays": work,
        "model": model.weight_bytes,
        "forward pass": forward,
    }
    what = (
        f"prediction of {target.name} ({n_context} context pairs, ensemble {options.ensemble}, "
        f"{batch} slice(s) of {height}×{width} per pass)"
    )
    return ResourcePlan(what, parts)


def _size(item: Any) -> InputSize:
    return input_size(item) if isinstance(item, str | Path | tuple | list) else loaded_size(item)


def check_input_files(specs: Sequence[Spec], max_memory: float | None, what: str) -> None:
    """Check the decoded size and field of view of input files from their headers alone."""
    sizes = [input_size(s) for s in specs]
    for size in sizes:
        check_field_of_view(size)
    if sizes:
        held = sum(s.held for s in sizes) + max(s.peak for s in sizes)
        ResourcePlan(what, {"decoded inputs": held}).check(max_memory)


def check_files(target: Any, context_in: Sequence[Any], context_out: Sequence[Any], model: Any,
                options: Any) -> None:  # fmt: skip
    """Check a prediction's plan before the target is decoded: each input a file spec (its
    header is read) or a loaded input; ``model`` a path, None or a ready model."""
    if not context_in or len(context_in) != len(context_out):
        return  # the context's own checks name the problem
    sizes = [_size(s) for s in (target, *context_in, *context_out)]
    pairs = list(zip(sizes[1 : 1 + len(context_in)], sizes[1 + len(context_in) :], strict=True))
    if (sizes[0].affine is None) != (pairs[0][0].affine is None):
        return  # a volume and 2D files: the plan's checks name the problem
    try:
        known = model_size(model)
    except (FileNotFoundError, ValueError):  # loading it names the problem, after the inputs'
        known = ModelSize(ModelConfig(), Geometry(), 0)
    prediction_memory(sizes[0], pairs, known, options).check(options.max_memory)


def check_prediction(plan: Any, net: Any) -> None:
    """Check a :class:`~neuralizer.infer.plan.PredictPlan`'s memory with the ready model
    ``net`` (the decoded inputs, every map of the task)."""
    pairs = [
        (loaded_size(a), loaded_size(b))
        for a, b in zip(plan.context_in, plan.context_out, strict=True)
    ]
    memory = prediction_memory(loaded_size(plan.target), pairs, model_size(net), plan.options,
                               plan.outputs.n_maps)  # fmt: skip
    memory.check(plan.options.max_memory)
