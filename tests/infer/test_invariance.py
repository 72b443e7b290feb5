"""Invariance of predictions to the head's pose, with the shipped model (issue 32's acceptance).

The thalami of a real-anatomy test person (never trained on), predicted from a copy turned by
15° and 20° about two axes (and shifted) and carried back, agree with those predicted from the
scan as it lies. Coronal slices, two example pairs: four registrations and two predictions.
The full check (the brain mask too, more people) is scripts/invariance_check.py; its figures are
in docs/reliability.md."""

import pytest

from neuralizer.data.people import PEOPLE_SPLITS
from neuralizer.evaluate.invariance import check_invariance


@pytest.mark.slow
def test_thalami_predicted_from_a_rotated_copy_agree_with_the_unrotated():
    found = check_invariance("thalamus", PEOPLE_SPLITS["test"][1], (15.0, 20.0, 0.0))
    print(found)
    assert abs(found.still_rotation_deg) < 5 and 20 < found.moved_rotation_deg < 30
    assert found.dice >= 0.95, found
