"""Denoising & bias correction: noise and/or a smooth multiplicative bias field -> the clean image.

Definition (exact): ``input = clean * bias_field(bias_coarse, shape) + noise`` where the bias field
is ``exp`` of the cubic upsampling of the recorded coarse log-field (all zeros when ``mode`` is
"noise") and the noise (zero when ``mode`` is "bias") is Gaussian or Rician with standard
deviation ``noise_std``, drawn from ``seed``. Not clipped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from neuralizer.data.subject import ContrastProfile, SliceSubject
from neuralizer.tasks.base import TaskSpace, encode_input, encode_output, new_seed, source_image
from neuralizer.tasks.fields import upsample_coarse

MODES = ("noise", "bias", "both")
NOISE_TYPES = ("gaussian", "rician")
BIAS_GRID = 4


@dataclass(frozen=True)
class DenoisingParams:
    profile: ContrastProfile
    mode: str
    noise_type: str
    noise_std: float
    bias_strength: float
    bias_coarse: tuple[tuple[float, ...], ...]  # BIAS_GRID×BIAS_GRID log-bias values
    seed: int
    real_image: str = ""  # a real image of the subject instead of a render (see TaskSpace)


def bias_field(coarse, shape: tuple[int, int]) -> np.ndarray:
    """Smooth positive H×W field: ``exp`` of the cubic upsampling of a coarse log-field."""
    return np.exp(upsample_coarse(coarse, shape))


def corrupt(clean: np.ndarray, params: DenoisingParams) -> np.ndarray:
    """H×W clean image -> H×W corrupted image (see module doc; the render seed is not used)."""
    image = clean * bias_field(params.bias_coarse, clean.shape)
    if params.mode == "bias" or params.noise_std == 0:
        return image.astype(np.float32)
    rng = np.random.default_rng([params.seed, 1])
    n1, n2 = rng.normal(0.0, params.noise_std, (2, *clean.shape))
    if params.noise_type == "rician":
        return np.sqrt((image + n1) ** 2 + n2**2).astype(np.float32)
    return (image + n1).astype(np.float32)


class Denoising:
    name = "denoising"
    segmentation_like = False
    n_input_channels = 1
    mask_channel = None

    def __init__(self, space: TaskSpace):
        self.space = space

    def _realisation(self, params: DenoisingParams, rng: np.random.Generator) -> DenoisingParams:
        sd = params.bias_strength if params.mode != "noise" else 0.0
        coarse = rng.normal(0.0, sd, (BIAS_GRID, BIAS_GRID))
        return dataclasses.replace(
            params,
            bias_coarse=tuple(tuple(float(v) for v in row) for row in coarse),
            seed=new_seed(rng),
        )

    def sample(self, rng: np.random.Generator) -> DenoisingParams:
        profile, real_image = self.space.input_source(rng)
        mode = str(rng.choice(MODES))
        params = DenoisingParams(
            profile=profile,
            real_image=real_image,
            mode=mode,
            noise_type=str(rng.choice(NOISE_TYPES)),
            noise_std=float(rng.uniform(0.02, 0.12)) if mode != "bias" else 0.0,
            bias_strength=float(rng.uniform(0.1, 0.4)) if mode != "noise" else 0.0,
            bias_coarse=(),
            seed=0,
        )
        return self._realisation(params, rng)

    def sample_pair(self, params: DenoisingParams, rng: np.random.Generator) -> DenoisingParams:
        return self._realisation(params, rng)

    def apply(self, subject: SliceSubject, params: DenoisingParams):
        """Returns (3×H×W noisy/biased image, 1×H×W clean image)."""
        clean = source_image(subject, params.profile, params.seed, params.real_image, clean=True)
        return encode_input(corrupt(clean, params)), encode_output(clean)
