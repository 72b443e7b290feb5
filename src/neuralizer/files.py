"""Writing files so that a crash or a kill never leaves a partial one (the ground floor: no
import of any other part of neuralizer)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from glob import escape as glob_escape
from pathlib import Path

#: Longest file name (bytes) of the file systems we write to (ext4, XFS, Btrfs, APFS, NTFS).
NAME_MAX = 255
# mkstemp's random part and our ".tmp" suffix, and the two dots around the name.
_TEMP_EXTRA = len(".") + len(".") + 8 + len(".tmp")


def temporary_prefix(name: str) -> str:
    """``.NAME.``, NAME cut short (whole characters) so that the temporary file's full name,
    ``.NAME.<8 random characters>.tmp``, stays within :data:`NAME_MAX` bytes."""
    name = name[: NAME_MAX - _TEMP_EXTRA]
    while len(os.fsencode(name)) > NAME_MAX - _TEMP_EXTRA:  # multi-byte characters
        name = name[:-1]
    return f".{name}."


def write_atomically(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    The temporary file is ``.NAME.<random>.tmp``, NAME shortened if need be
    (:func:`temporary_prefix`; see :func:`remove_stale_temporaries`); on any error it is
    removed, so ``path`` holds either its old content or all of ``data``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(
        dir=path.parent, prefix=temporary_prefix(path.name), suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp creates the file 0600; give the result the permissions of a plain open().
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: Path, names: Iterable[str]) -> None:
    """Delete the temporary files of :func:`write_atomically` for ``folder / name`` (each of
    ``names``) that a process killed mid-write left behind; other files are not touched."""
    for name in names:
        for temp in Path(folder).glob(f"{glob_escape(temporary_prefix(name))}*.tmp"):
            temp.unlink(missing_ok=True)
