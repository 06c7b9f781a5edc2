"""Checkpoints of a search: written atomically, checked before they are resumed from."""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile

__all__ = ["read_checkpoint", "write_checkpoint"]

_MAGIC = b"DASKTRAIN-CHECKPOINT"
_VERSION = 2


def write_checkpoint(path, state: dict) -> None:
    """Write `state` to `path` atomically: a header with a checksum, then the pickle.

    The bytes go to a temporary file in the same directory that replaces
    `path` in one step (:func:`os.replace`), so `path` always holds either the
    previous checkpoint or the new one, never a partial file.
    """
    payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.sha256(payload).hexdigest().encode("ascii")
    header = b" ".join([_MAGIC, str(_VERSION).encode("ascii"), digest,
                        str(len(payload)).encode("ascii")]) + b"\n"
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".checkpoint-", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(header)
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def read_checkpoint(path) -> dict:
    """The state written by :func:`write_checkpoint`; ValueError if the file is damaged."""
    with open(path, "rb") as stream:
        content = stream.read()
    header, _, payload = content.partition(b"\n")
    parts = header.split(b" ")
    problem = None
    if len(parts) != 4 or parts[0] != _MAGIC:
        problem = "it is not a dasktrain checkpoint"
    elif parts[1] != str(_VERSION).encode("ascii"):
        problem = f"it has version {parts[1].decode(errors='replace')}, not {_VERSION}"
    elif not parts[3].isdigit() or int(parts[3]) != len(payload):
        problem = "it is truncated"
    elif hashlib.sha256(payload).hexdigest().encode("ascii") != parts[2]:
        problem = "its checksum does not match (the file is damaged)"
    if problem is not None:
        raise ValueError(f"The 'checkpoint' file {os.fspath(path)!r} cannot be resumed from: "
                         f"{problem}. Delete it or pass another path.")
    return pickle.loads(payload)


def check_checkpoint_path(path, owner: str) -> None:
    """Raise ValueError naming 'checkpoint' when its directory does not exist or is not writable."""
    if path is None:
        return
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(directory):
        raise ValueError(f"The 'checkpoint' parameter of {owner} names a file in a directory "
                         f"that does not exist: {directory!r}. Create it or pass another path.")
    if not os.access(directory, os.W_OK):
        raise ValueError(f"The 'checkpoint' parameter of {owner} names a file in a directory "
                         f"that is not writable: {directory!r}.")
