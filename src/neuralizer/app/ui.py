"""``neuralizer serve``: the web page (Gradio Blocks) and the local server behind it.

Gradio because it is the most used, actively maintained library for local model demos in Python:
file uploads, progress bars, error pop-ups, sliders and downloads come with it, served by one
local process with no JavaScript of ours.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import traceback
from pathlib import Path

from neuralizer.app.core import (
    EXAMPLE_PAIRS,
    SLICE_DIRECTIONS,
    AppModel,
    example_names,
    readable,
    run_prediction,
    write_example,
)
from neuralizer.app.view import View, render, view_of
from neuralizer.errors import USER_ERRORS
from neuralizer.infer.plan import DEFAULT_ADAPT_STEPS

#: Before gradio is imported: no usage statistics, no version check, no Hugging Face Hub calls.
OFFLINE_ENVIRONMENT = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}
DEFAULT_EXAMPLE = "white-matter"
ALIGN_HELP = (
    "affine: register your scan and every example once to the MNI152 space and predict on its "
    "slices (seconds per scan); "
    "none: the examples already share your scan's world space"
)
ADAPT_HELP = (
    f"0: none; K > 0 first fine-tunes a copy of the model for K steps on the examples (2 or "
    f"more), which pays with several examples and costs about a second a step on a CPU; "
    f"{DEFAULT_ADAPT_STEPS} is the measured default"
)
AXIS_HELP = (
    "a 3D scan is predicted slice by slice; all: coronal, axial and sagittal averaged (more "
    "accurate, about three times the time)"
)
INTRO = """# Neuralizer: solve a neuroimaging task from a few examples

Give a scan and a few **examples** of the task — pairs of an input image and the output you
want for it (a brain mask, a structure's segmentation, a denoised image…). Neuralizer does the
same to your scan in one pass, with no training. Use a built-in example, or your own files
(NIfTI volumes, or 2D PNG/NPY images); files stay on this computer.
"""


def handle_run(app_model: AppModel, folder: Path, target, context_in, context_out, ensemble,
               align, seed, axis="coronal", adapt=0):  # fmt: skip
    """Predict, or raise ``gr.Error`` with a one-line message (never a stack trace).

    Returns (view, status, slice index, pictures…, downloads) for the page.
    """
    import gradio as gr

    paths = [target, *(context_in or []), *(context_out or [])]
    failure = None
    try:
        prediction = run_prediction(
            app_model.net, target, _sorted(context_in), _sorted(context_out), ensemble=ensemble,
            align=align, seed=seed, folder=folder, axis=axis, adapt=adapt,
        )  # fmt: skip
    except USER_ERRORS as error:
        failure = ("Cannot run", readable(error, paths))
    except MemoryError:
        failure = ("Cannot run", "not enough memory for these files: use smaller or fewer files")
    except Exception as error:  # a bug of ours: the page gets a line, the console the traceback
        traceback.print_exc()
        message = f"unexpected error ({type(error).__name__}); the details are in the terminal"
        failure = ("Something went wrong", message)
    if failure is not None:
        # Raised outside the handler: the new error has no context, so no traceback keeps the
        # failed request's frames (and their arrays) alive once the page has the message.
        raise gr.Error(failure[1], title=failure[0], print_exception=False)
    view = view_of(prediction)
    index = view.centre_slice()
    steps = "; ".join(prediction.result.steps)
    kind = {"segmentation": "a mask", "labels": "a label map", "image": "an image"}
    output = kind.get(prediction.result.task, prediction.result.task)
    status = f"**Done**: the result is {output}. {steps}."
    return (view, status, _slider(view, index), *_pictures(view, index),
            [str(p) for p in prediction.downloads])  # fmt: skip


def _sorted(files) -> list[str]:
    """Uploaded files in the order of their names (as the command's globs), so pairs match."""
    return sorted((str(f) for f in files or []), key=lambda f: (Path(f).name, f))


def _slider(view: View, index: int):
    import gradio as gr

    last = view.n_slices - 1
    return gr.Slider(minimum=0, maximum=max(last, 1), value=index, interactive=last > 0,
                     label=f"Coronal slice (of {view.n_slices})")  # fmt: skip


def _pictures(view: View | None, index: int) -> tuple:
    """(target, prediction, uncertainty, context gallery) for the page."""
    import gradio as gr

    if view is None:
        return None, None, gr.Image(value=None, label="Uncertainty"), []
    pictures = render(view, int(index))
    uncertainty = pictures["uncertainty"]
    label = "Uncertainty (s.d. of passes)" if uncertainty is not None else (
        "Uncertainty: choose an ensemble size ≥ 2")  # fmt: skip
    return (pictures["target"], pictures["prediction"], gr.Image(value=uncertainty, label=label),
            pictures["context"])  # fmt: skip


def _not_run() -> tuple:
    """The outputs after a failed run: no pictures, no downloads, a pointer to the message."""
    import gradio as gr

    status = "**Not run**: see the message in the corner of the page."
    slider = gr.Slider(minimum=0, maximum=1, value=0, interactive=False, label="Coronal slice")
    return (None, status, slider, *_pictures(None, 0), None)


def _picture(label: str, elem_id: str):
    """An output picture, sent as PNG (exact pixels); no "share" button (it would go online)."""
    import gradio as gr

    return gr.Image(label=label, elem_id=elem_id, interactive=False, format="png",
                    buttons=["download", "fullscreen"])  # fmt: skip


def _input_column() -> dict:
    """The left column: a built-in example or the user's files, then the settings."""
    import gradio as gr

    c = {}
    with gr.Tab("Built-in example"):
        c["example"] = gr.Dropdown(
            [(f"{name}: {text}", name) for name, text in example_names().items()],
            value=DEFAULT_EXAMPLE, label="Task", elem_id="example-task",
        )  # fmt: skip
        gr.Markdown(
            f"A real test person (never used in training) and {EXAMPLE_PAIRS} examples of the "
            "task from other real people. The first run builds them, which can take half a "
            "minute."
        )
        c["run_example"] = gr.Button("Run the example", variant="primary", elem_id="run-example")
    with gr.Tab("Your files"):
        c["target"] = gr.File(label="Your scan (target)", elem_id="target-file")
        c["context_in"] = gr.File(label="Example inputs", file_count="multiple",
                                  elem_id="context-in-files")  # fmt: skip
        c["context_out"] = gr.File(
            label="Example outputs (paired with the inputs in file-name order)",
            file_count="multiple", elem_id="context-out-files",
        )  # fmt: skip
        c["run_files"] = gr.Button("Run on my files", variant="primary", elem_id="run-files")
    c["ensemble"] = gr.Slider(1, 16, value=1, step=1, label="Ensemble size",
                              info="passes with resampled examples; 2 or more also give an "
                              "uncertainty map", elem_id="ensemble")  # fmt: skip
    c["align"] = gr.Radio(["affine", "none"], value="affine", info=ALIGN_HELP,
                          label="Alignment of the examples to the scan")  # fmt: skip
    c["axis"] = gr.Radio(list(SLICE_DIRECTIONS), value="coronal", info=AXIS_HELP, elem_id="axis",
                         label="Slice direction (volumes)")  # fmt: skip
    c["adapt"] = gr.Slider(0, 4 * DEFAULT_ADAPT_STEPS, value=0, step=10, elem_id="adapt",
                           label="Adapt to the examples (steps)", info=ADAPT_HELP)  # fmt: skip
    c["seed"] = gr.Number(0, precision=0, label="Seed (same seed, same result)")
    return c


def _result_column() -> dict:
    """The right column: status, slice slider, pictures, examples and downloads."""
    import gradio as gr

    c = {}
    c["status"] = gr.Markdown("Pick a built-in example or upload your files, then run.",
                              elem_id="status")  # fmt: skip
    c["slice"] = gr.Slider(0, 1, value=0, step=1, label="Coronal slice", interactive=False,
                           elem_id="slice")  # fmt: skip
    with gr.Row():
        c["target"] = _picture("Your scan", "target-image")
        c["prediction"] = _picture("Prediction", "prediction-image")
        c["uncertainty"] = _picture("Uncertainty", "uncertainty-image")
    c["gallery"] = gr.Gallery(label="Examples used (input | output), same slice",
                              columns=EXAMPLE_PAIRS, height=280, object_fit="contain",
                              format="png", buttons=["fullscreen"], interactive=False,
                              elem_id="context-gallery")  # fmt: skip
    c["downloads"] = gr.File(label="Download (NIfTI on your scan's grid; volumes as TSV)",
                             file_count="multiple", interactive=False,
                             elem_id="downloads")  # fmt: skip
    return c


def build_app(app_model: AppModel, folder: Path):
    """The page: inputs and settings on the left, pictures and downloads on the right."""
    import gradio as gr

    with gr.Blocks(title="Neuralizer", analytics_enabled=False,
                   delete_cache=(3600, 86400)) as page:  # fmt: skip
        gr.Markdown(INTRO)
        gr.Markdown(f"**Model:** {app_model.description}", elem_id="model-info")
        view_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=2):
                i = _input_column()
            with gr.Column(scale=3):
                r = _result_column()
        pictures = [r["target"], r["prediction"], r["uncertainty"], r["gallery"]]
        outputs = [view_state, r["status"], r["slice"], *pictures, r["downloads"]]
        tracker = gr.Progress(track_tqdm=True)  # as a default value: follows the tqdm bars

        def run_on_files(target, context_in, context_out, ensemble, align, seed, axis, adapt,
                         progress=tracker):  # fmt: skip
            return handle_run(app_model, folder, target, context_in, context_out, ensemble,
                              align, seed, axis, adapt)  # fmt: skip

        def run_on_example(name, ensemble, align, seed, axis, adapt, progress=tracker):
            progress(0, desc="preparing the example")
            try:
                files = write_example(name, folder / "examples")
            except USER_ERRORS as error:
                raise gr.Error(readable(error, []), title="Cannot run") from None
            return handle_run(app_model, folder, str(files.target), files.context_in,
                              files.context_out, ensemble, align, seed, axis, adapt)  # fmt: skip

        settings = [i["ensemble"], i["align"], i["seed"], i["axis"], i["adapt"]]
        # Progress (and a failure) shows on the prediction only, not on every picture; after a
        # failure the page shows no result, so nobody takes an earlier one for this run's.
        for button, handler, inputs in (
            (i["run_files"], run_on_files, [i["target"], i["context_in"], i["context_out"]]),
            (i["run_example"], run_on_example, [i["example"]]),
        ):
            run = button.click(handler, [*inputs, *settings], outputs,
                               show_progress_on=r["prediction"])  # fmt: skip
            run.failure(_not_run, None, outputs)
        r["slice"].input(_pictures, [view_state, r["slice"]], pictures, show_progress="hidden",
                         trigger_mode="always_last")  # fmt: skip
    return page


#: Largest upload Gradio accepts: a 1 mm whole-head float32 volume is about 30 MB, a 0.5 mm one
#: about 240 MB; larger files are refused with a message before they fill the disk.
MAX_UPLOAD = "1gb"


def serve(host: str = "127.0.0.1", port: int = 7860, model: str | Path | None = None) -> None:
    """Start the web app on ``host:port`` and serve until Ctrl-C or SIGTERM.

    Uploads and results go to a new temporary folder, removed when the server stops.
    """
    from neuralizer.app.core import choose_model

    app_model = choose_model(model)  # a bad checkpoint fails here, before anything is served
    folder = Path(tempfile.mkdtemp(prefix="neuralizer-serve-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ.update(OFFLINE_ENVIRONMENT, GRADIO_TEMP_DIR=str(folder / "uploads"))
    # SIGTERM stops the server like Ctrl-C, so the temporary folder is removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    page = build_app(app_model, folder)
    page.queue(default_concurrency_limit=1)  # predictions use every core: one at a time
    plain = app_model.description.replace("*", "").replace("`", "")
    print(f"Neuralizer web app on http://{host}:{port}/ (model: {plain})")
    print(f"uploads and results in {folder} (removed when the server stops)", flush=True)
    try:
        page.launch(
            server_name=host, server_port=port, share=False, inbrowser=False, quiet=True,
            ssr_mode=False, pwa=False, mcp_server=False, footer_links=[], show_error=False,
            max_file_size=MAX_UPLOAD,
        )  # fmt: skip
    except OSError:  # Gradio's message names its own settings, not our options
        raise ValueError(
            f"cannot serve on {host}:{port}: the port is in use or the address is not this "
            "computer's; choose another --port or --host"
        ) from None
    except KeyboardInterrupt:
        pass
    finally:
        page.close()
