"""The web app's handlers without a browser: readable errors, 2D results, model line, pictures."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

import neuralizer
from neuralizer.app.core import AppModel, choose_model, output_name
from neuralizer.app.view import View, overlay_mask, render, shown

gr = pytest.importorskip("gradio")
from neuralizer.app import ui  # noqa: E402  (needs gradio)
from neuralizer.app.ui import handle_run  # noqa: E402

from .conftest import tiny_model  # noqa: E402


@pytest.fixture
def app_model() -> AppModel:
    return AppModel(tiny_model(), "tiny test model", True)


def _disc(size: int = 40, radius: float = 12.0, shift: float = 0.0) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    return (((y - size / 2 - shift) ** 2 + (x - size / 2) ** 2) < radius**2).astype(np.float32)


@pytest.fixture
def files_2d(tmp_path: Path) -> dict[str, str]:
    """A 2D target and two context pairs as NPY files, and some bad files."""
    rng = np.random.default_rng(0)
    out = {}
    for name, shift in (("target", 0.0), ("a", 2.0), ("b", -2.0)):
        mask = _disc(shift=shift)
        image = 0.2 + 0.6 * mask + 0.05 * rng.standard_normal(mask.shape)
        np.save(tmp_path / f"{name}_img.npy", image.astype(np.float32))
        np.save(tmp_path / f"{name}_mask.npy", mask)
        out[name] = str(tmp_path / f"{name}_img.npy")
        out[f"{name}_mask"] = str(tmp_path / f"{name}_mask.npy")
    (tmp_path / "upload" / "x1").mkdir(parents=True)
    (tmp_path / "upload" / "x1" / "scan.nii.gz").write_bytes(b"this is not a scan")
    out["corrupt"] = str(tmp_path / "upload" / "x1" / "scan.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32) * _disc(8, 3)[:, :, None],
                             np.eye(4)), tmp_path / "volume.nii.gz")  # fmt: skip
    out["volume"] = str(tmp_path / "volume.nii.gz")
    return out


def _error(app_model, tmp_path, target, c_in, c_out, **settings) -> str:
    run = {"ensemble": 1, "align": "affine", "seed": 0, "axis": "coronal", "adapt": 0} | settings
    with pytest.raises(gr.Error) as caught:
        handle_run(app_model, tmp_path, target, c_in, c_out, run["ensemble"], run["align"],
                   run["seed"], run["axis"], run["adapt"])  # fmt: skip
    return caught.value.message


def test_bad_uploads_give_the_projects_message_with_the_file_name_only(app_model, files_2d,
                                                                       tmp_path):  # fmt: skip
    f = files_2d
    message = _error(app_model, tmp_path, f["corrupt"], [f["a"]], [f["a_mask"]])
    assert message.startswith("scan.nii.gz is not a readable NIfTI file")
    assert str(tmp_path) not in message and "Traceback" not in message
    assert "no target" in _error(app_model, tmp_path, None, [f["a"]], [f["a_mask"]])
    assert "context is empty" in _error(app_model, tmp_path, f["target"], [], [])
    message = _error(app_model, tmp_path, f["target"], [f["a"], f["b"]], [f["a_mask"]])
    assert message == "2 context inputs but 1 context outputs: give one output per input"
    message = _error(app_model, tmp_path, f["volume"], [f["a"]], [f["a_mask"]])
    assert "volume.nii.gz is a volume but the context is 2D" in message
    assert "ensemble size" in _error(app_model, tmp_path, f["target"], [f["a"]], [f["a_mask"]],
                                     ensemble=0)  # fmt: skip
    assert "adaptation steps" in _error(app_model, tmp_path, f["target"], [f["a"]],
                                        [f["a_mask"]], adapt=-10)  # fmt: skip
    assert list(tmp_path.glob("run-*/*")) == []  # nothing written for a refused run


def test_an_unexpected_failure_is_one_line_in_the_page(app_model, files_2d, tmp_path,
                                                       monkeypatch):  # fmt: skip
    def bug(*args, **kwargs):
        raise RuntimeError("a bug\nover several lines")

    monkeypatch.setattr(ui, "run_prediction", bug)
    message = _error(app_model, tmp_path, files_2d["target"], [files_2d["a"]],
                     [files_2d["a_mask"]])  # fmt: skip
    assert message.startswith("unexpected error (") and "\n" not in message


def test_2d_run_pairs_files_by_name_and_offers_the_result_as_npy(app_model, files_2d, tmp_path):
    f = files_2d
    # Uploaded in another order than their names: pairs are matched in file-name order.
    outputs = handle_run(app_model, tmp_path, f["target"], [f["b"], f["a"]],
                         [f["b_mask"], f["a_mask"]], 2, "auto", 0)  # fmt: skip
    view, status, _, target, prediction, uncertainty, gallery, downloads = outputs
    assert status.startswith("**Done**: the result is a mask.")
    assert [Path(p).name for p in downloads] == ["target_img_prediction.npy",
                                                 "target_img_uncertainty.npy"]  # fmt: skip
    expected = neuralizer.predict(
        np.load(f["target"]), [np.load(f["a"]), np.load(f["b"])],
        [np.load(f["a_mask"]), np.load(f["b_mask"])], model=tiny_model(), ensemble=2, seed=0,
    )  # fmt: skip
    assert np.array_equal(np.load(downloads[0]), expected.prediction)
    assert view.n_slices == 1 and target.shape == prediction.shape == (280, 280, 3)
    assert uncertainty.value is not None and len(gallery) == 2


def test_the_adapt_control_adapts_like_the_library(app_model, files_2d, tmp_path):
    f = files_2d
    outputs = handle_run(app_model, tmp_path, f["target"], [f["a"], f["b"]],
                         [f["a_mask"], f["b_mask"]], 1, "auto", 3, "coronal", 2)  # fmt: skip
    status, downloads = outputs[1], outputs[-1]
    assert "adapted a copy of the model to the 2 example pairs: 2 steps" in status
    expected = neuralizer.predict(
        np.load(f["target"]), [np.load(f["a"]), np.load(f["b"])],
        [np.load(f["a_mask"]), np.load(f["b_mask"])], model=tiny_model(), seed=3, adapt=2,
    )  # fmt: skip
    assert np.array_equal(np.load(downloads[0]), expected.prediction)


def test_output_names_follow_the_target():
    assert output_name("/up/a1/sub-01_T1w.nii.gz", "prediction") == "sub-01_T1w_prediction.nii.gz"
    assert output_name("scan.nii", "uncertainty") == "scan_uncertainty.nii.gz"
    assert output_name("slice.png", "prediction") == "slice_prediction.npy"


def test_without_a_shipped_model_the_page_says_the_network_is_untrained(monkeypatch, tmp_path):
    import neuralizer.model.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "DEFAULT_WEIGHTS", tmp_path / "none.safetensors")
    chosen = choose_model(None)
    assert not chosen.trained and "untrained" in chosen.description
    assert chosen.net.config.channels == 32


def test_a_2d_image_is_shown_as_it_is_and_masks_are_drawn_over_it():
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert np.array_equal(shown(image, None).slice_at(0.0), image)
    mask = np.zeros((3, 4))
    mask[1, 2] = 1
    background = np.zeros((3, 4, 3))
    drawn = overlay_mask(background, mask, "segmentation")
    assert drawn[1, 2, 0] > 0.5 and drawn[1, 2, 2] < drawn[1, 2, 0]
    assert not drawn[mask == 0].any()


def test_slices_of_a_volume_follow_world_coordinates():
    data = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    flipped = nib.Nifti1Image(data[:, ::-1], affine @ np.array(
        [[1, 0, 0, 0], [0, -1, 0, 4], [0, 0, 1, 0], [0, 0, 0, 1]]))  # fmt: skip
    a, b = shown(data, nib.Nifti1Image(data, affine)), shown(data[:, ::-1], flipped)
    assert np.array_equal(a.slice_at(2.0), b.slice_at(2.0))
    assert np.array_equal(a.slice_at(2.0), data[:, 1, :].T[::-1])
    view = View("image", a, a, None, [(b, b)])
    pictures = render(view, 3)
    assert pictures["uncertainty"] is None and len(pictures["context"]) == 1


def test_volume_run_predicts_in_the_chosen_slice_direction(tmp_path):
    model = tiny_model()
    with torch.no_grad():  # the random net's outputs are all below 0 (clamped): lift them
        model.out_conv.bias += 0.5
    app_model = AppModel(model, "tiny test model", True)
    grid = np.mgrid[:20, :24, :20].astype(np.float32)
    paths = {}
    for name, shift in (("target", 0.0), ("a", 1.5), ("b", -1.5)):
        ball = ((grid - np.array([10 + shift, 12, 9])[:, None, None, None]) ** 2).sum(0) < 36
        image = (0.2 + 0.6 * ball).astype(np.float32)
        affine = np.diag([2.0, 2.0, 2.0, 1.0])
        for kind, data in (("img", image), ("out", 1.0 - image)):  # an image task: no threshold
            paths[f"{name}_{kind}"] = tmp_path / f"{name}_{kind}.nii.gz"
            nib.save(nib.Nifti1Image(data, affine), paths[f"{name}_{kind}"])
    c_in, c_out = [paths["a_img"], paths["b_img"]], [paths["a_out"], paths["b_out"]]
    outputs = handle_run(app_model, tmp_path, str(paths["target_img"]), c_in, c_out, 1, "none", 0,
                         "axial")  # fmt: skip
    written = np.asarray(nib.load(outputs[-1][0]).dataobj)
    expected = {
        axis: neuralizer.predict_volume(
            str(paths["target_img"]), c_in, c_out, model=model, align="none", axis=axis
        ).prediction
        for axis in ("axial", "coronal")
    }
    np.testing.assert_allclose(written, np.asarray(expected["axial"].dataobj), atol=1e-6)
    assert np.abs(written - np.asarray(expected["coronal"].dataobj)).max() > 1e-3
    message = _error(app_model, tmp_path, str(paths["target_img"]), c_in, c_out, axis="oblique")
    assert message.startswith("the slice direction must be one of coronal, axial, sagittal, all")


def test_the_target_is_drawn_with_the_template_outline_the_alignment_found():
    """Issue 32: the app draws the MNI152 brain's outline, carried by the alignment found, over
    the target (cyan); a 20 mm shift moves it, and without an alignment nothing is drawn."""
    from types import SimpleNamespace

    from neuralizer.app.view import OUTLINE_RGB, view_of
    from neuralizer.data.mni_templates import templates
    from neuralizer.infer.io import Loaded

    grid, template = templates()
    image = nib.Nifti1Image(template["brain"].astype(np.float32), grid.affine)
    target = Loaded("brain.nii.gz", template["brain"][None].astype(np.float32), image)

    def cyan(matrix) -> np.ndarray:
        alignment = None if matrix is None else SimpleNamespace(matrix=matrix)
        result = SimpleNamespace(task="segmentation", prediction=image, uncertainty=None,
                                 alignment=alignment)  # fmt: skip
        prediction = SimpleNamespace(target=target, context_in=[], context_out=[], result=result)
        view = view_of(prediction)
        picture = render(view, view.n_slices // 2)["target"]
        return np.all(picture == np.round(255 * OUTLINE_RGB).astype(np.uint8), axis=-1)

    shift = np.eye(4)
    shift[0, 3] = 20.0
    still, moved = cyan(np.eye(4)), cyan(shift)
    assert still.sum() > 100 and moved.sum() > 100
    columns = np.flatnonzero(still.any(axis=0)), np.flatnonzero(moved.any(axis=0))
    assert columns[1].mean() - columns[0].mean() > 20  # 20 mm right: 10 voxels, enlarged
    assert not cyan(None).any()
