import numpy as np
import pytest

from neuralizer.cli import main


def test_gallery_writes_a_png(shared_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALIZER_CACHE", str(shared_cache))
    out = tmp_path / "gallery.png"
    assert (
        main(["data", "gallery", "-o", str(out), "--voxel-size-mm", "4", "--n-subjects", "2"]) == 0
    )
    import matplotlib.image

    picture = matplotlib.image.imread(str(out))
    assert picture.shape[0] > 200 and picture.shape[1] > 1000 and np.ptp(picture) > 0.5


def test_import_reports_user_errors(tmp_path, capsys):
    assert main(["data", "import", str(tmp_path / "missing"), "-o", str(tmp_path / "out")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "import", str(tmp_path), "-o", str(tmp_path), "--kind", "ct"])
