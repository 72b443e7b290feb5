"""The task gallery command runs and covers every task and augmentation."""

from __future__ import annotations

from neuralizer.cli import main
from neuralizer.data.phantom import PhantomSource
from neuralizer.tasks.augmentations import AUGMENTATION_NAMES
from neuralizer.tasks.gallery import gallery_episodes
from neuralizer.tasks.registry import TASK_NAMES


def test_gallery_rows_cover_everything():
    rows = gallery_episodes(PhantomSource(n_subjects=3, size=32))
    assert len(rows) == len(TASK_NAMES) + len(AUGMENTATION_NAMES)
    for (title, episode), name in zip(rows, (*TASK_NAMES, *AUGMENTATION_NAMES), strict=True):
        assert title.startswith(name)
        if name in AUGMENTATION_NAMES:  # the showcased augmentation was really applied
            assert [a for a, _ in episode.record.augmentations] == [name]


def test_cli_writes_png(tmp_path):
    out = tmp_path / "tasks.png"
    assert main(["data", "tasks", "-o", str(out), "--source", "phantom"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
