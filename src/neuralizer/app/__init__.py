"""The local web app (``neuralizer serve``): upload a scan and a few examples, or pick a built-in
example; see the target, the examples, the prediction and its uncertainty slice by slice; download
the result as the same NIfTI file ``neuralizer predict`` writes. Needs the ``app`` extra (Gradio).
"""


def serve(*args, **kwargs) -> None:
    """Start the web app (see :func:`neuralizer.app.ui.serve`); imported on first use."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ValueError("the web app needs Gradio: pip install 'neuralizer[app]'") from None
    from neuralizer.app.ui import serve as run

    run(*args, **kwargs)


__all__ = ["serve"]
