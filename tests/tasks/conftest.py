"""Fixtures for the task tests: a geometric phantom that satisfies the data contract."""

from __future__ import annotations

import numpy as np
import pytest

from neuralizer.data.phantom import PHANTOM_LABEL_NAMES, PhantomSource, phantom_subject
from neuralizer.data.render import sample_profile
from neuralizer.tasks.base import TaskSpace


@pytest.fixture
def subject():
    return phantom_subject(seed=3, position=0.5, size=64)


@pytest.fixture
def source():
    return PhantomSource(n_subjects=6, size=64)


@pytest.fixture
def space():
    protocols = {k: tuple(sorted(v)) for k, v in PHANTOM_LABEL_NAMES.items()}
    return TaskSpace(protocols=protocols, label_names=PHANTOM_LABEL_NAMES, image_shape=(64, 64))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def t1(rng):
    return sample_profile("t1", rng)
