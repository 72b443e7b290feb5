"""The files a prediction reads and writes, checked before anything is read (torch-free).

An input is one file, or up to three files joined into the channels of one input. The explicit
way to join them is a lone ``+`` between file names on the command line
(``-i T1.nii.gz + T2.nii.gz``) or a tuple of paths in Python: it cannot be mistaken for a file
name (a file called ``+`` is ``./+``). The older ``T1.nii.gz+T2.nii.gz`` still works when no file
of that literal name exists, so ``sub-01+T1.nii.gz`` is always the file of that name. Likewise a
name with ``[``, ``*`` or ``?`` is a glob only when no file of that literal name exists.

Outputs are checked before any input is read: a name the file system takes, a folder that can
hold it, and never an input nor another output of the same run (compared as files: resolved
paths, symlinks and hard links included).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from neuralizer.files import NAME_MAX

__all__ = ["NAME_MAX", "JOIN", "check_outputs", "expand", "group_channels", "input_files"]

JOIN = "+"
GLOB_CHARACTERS = "*?["
#: One input: a path, the ``a+b`` form, or the paths of its channels.
Spec = str | Path | tuple[str | Path, ...] | list[str | Path]


def check_name(path: str | Path, what: str = "") -> None:
    """ValueError if a component of ``path`` is longer than the file system allows."""
    for part in Path(path).parts:
        if len(os.fsencode(part)) > NAME_MAX:
            label = f"{what} " if what else ""
            raise ValueError(
                f"{label}{str(path)[:60]}…: a file or folder name of {len(os.fsencode(part))} "
                f"bytes, longer than the {NAME_MAX} the file system allows; shorten it"
            )


def exists(path: str | Path) -> bool:
    """``Path.exists`` that says False (instead of raising) for a name too long to exist."""
    try:
        return Path(path).exists()
    except OSError:
        return False


def spec_name(spec: Spec) -> str:
    """How messages name an input spec."""
    if isinstance(spec, tuple | list):
        return f" {JOIN} ".join(str(p) for p in spec)
    return str(spec)


def input_files(spec: Spec) -> list[Path]:
    """The files of one input: the paths of a tuple; the literal path if it exists; else the
    parts of ``a+b`` (FileNotFoundError naming both readings when neither exists)."""
    if isinstance(spec, tuple | list):
        if not spec:
            raise ValueError("an input joined from channels needs at least one file")
        return [Path(p) for p in spec]
    text = str(spec)
    if JOIN not in text or exists(text):
        return [Path(text)]
    parts = text.split(JOIN)
    missing = [p for p in parts if not p or not exists(p)]
    if missing:
        raise FileNotFoundError(
            f"{text}: no such file (nor the channels {', '.join(repr(p) for p in parts)} joined "
            f"with {JOIN}: {', '.join(repr(p) for p in missing)} missing)"
        )
    return [Path(p) for p in parts]


def group_channels(tokens: Sequence[str]) -> list[str | tuple[str, ...]]:
    """Command-line tokens with a lone ``+`` joining its neighbours into one input (a tuple):
    ``[a, +, b, c]`` -> ``[(a, b), c]``. ValueError for a ``+`` with nothing on one side."""
    out: list[str | tuple[str, ...]] = []
    join_next = False
    for token in tokens:
        if token == JOIN:
            if not out or join_next:
                raise ValueError(f"a lone {JOIN} joins two file names: nothing before it")
            join_next = True
            continue
        if join_next:
            last = out.pop()
            out.append((*(last if isinstance(last, tuple) else (last,)), token))
            join_next = False
        else:
            out.append(token)
    if join_next:
        raise ValueError(f"a lone {JOIN} joins two file names: nothing after it")
    return out


def expand(patterns: Sequence[Spec]) -> list[Spec]:
    """Globs expanded (sorted) unless a file has the literal name; joined inputs and plain
    names pass through unchanged."""
    out: list[Spec] = []
    for pattern in patterns:
        text = str(pattern)
        literal = isinstance(pattern, tuple | list) or exists(text)
        if literal or JOIN in text or not any(ch in text for ch in GLOB_CHARACTERS):
            out.append(pattern)
            continue
        matches = sorted(glob.glob(text))
        if not matches:
            raise FileNotFoundError(f"{text}: no file matches")
        out += matches
    return out


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (symlinks and hard links followed), or would be."""
    if exists(a) and exists(b):
        try:
            return os.path.samefile(a, b)
        except OSError:
            pass
    return a.resolve() == b.resolve()


def check_writable(path: Path, what: str) -> None:
    """ValueError unless a file ``path`` can be created (or replaced): a name the file system
    takes, not a folder, and its nearest existing folder writable (not a file)."""
    check_name(path, what)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give a file name")
    parent = path.parent
    while not exists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{what} {path} cannot be written: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} {path} cannot be written: {parent} is not writable")


def check_outputs(outputs: dict[str, Path | None], inputs: Iterable[Path]) -> None:
    """ValueError unless every output can be written, none is an input (which it would
    destroy) and no two outputs are one file."""
    given = {what: Path(p) for what, p in outputs.items() if p is not None}
    for what, path in given.items():
        check_writable(path, what)
    inputs = [Path(p) for p in inputs]
    for what, path in given.items():
        for source in inputs:
            if same_file(path, source):
                raise ValueError(
                    f"{what} {path} is the input {source}: writing it would destroy the input; "
                    "give another output name"
                )
    items = list(given.items())
    for i, (what, path) in enumerate(items):
        for other, other_path in items[i + 1 :]:
            if same_file(path, other_path):
                raise ValueError(f"{what} and {other} are the same file {path}; give two names")
