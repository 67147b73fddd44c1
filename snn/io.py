"""Files: atomic writes, a torch loader that runs no code, and checks of output paths before work starts.

Atomic writes: results, checkpoints and exports go to a temporary file ``.{name}.{host}.{pid}.{random}.tmp``
next to the target, then are renamed over it, so a reader sees the old file or the new one, never a part.
A writer killed outright (``kill -9``, power loss) cannot remove its temporary file; the next write of the
same target removes the temporaries that a dead process of this host left (a live process's, or another
host's on a shared file system, are left alone).
"""
from __future__ import annotations

import errno
import json
import os
import re
import socket
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_json", "atomic_torch_save", "atomic_write_bytes", "remove_stale_temporaries",
           "safe_torch_load", "UnsafeFileError", "check_output_file", "check_output_dir", "existing_results"]


# -- atomic writes --------------------------------------------------------------------------------------

def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _temp_pattern(name: str) -> re.Pattern:
    """``.{name}.{host}.{pid}.{random}.tmp``: the temporaries :func:`atomic_path` makes for ``name``."""
    return re.compile(rf"\.{re.escape(name)}\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path) -> list[Path]:
    """Remove the temporaries of ``path`` left by dead processes of this host; returns what was removed."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern, host, removed = _temp_pattern(path.name), _host(), []
    for p in path.parent.glob(f".{_glob_escape(path.name)}.*.tmp"):
        m = pattern.fullmatch(p.name)
        if m and m["host"] == host and not _alive(int(m["pid"])):
            try:
                p.unlink()
                removed.append(p)
            except FileNotFoundError:  # another writer cleaned it first
                pass
    return removed


def _glob_escape(name: str) -> str:
    """``name`` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)


@contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success rename it over ``path``, on error remove it.
    Temporaries of ``path`` left by killed writers are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_host()}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=_jsonable) + "\n").encode())


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` to a temporary file, then rename."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _jsonable(o):
    try:
        import numpy as np
        import torch
        if isinstance(o, torch.Tensor):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# -- loading without running code -----------------------------------------------------------------------

class UnsafeFileError(ValueError):
    """A torch file holds objects other than tensors and plain data; it was refused without running them."""


def _numpy_array_globals() -> list:
    """What unpickling a plain numpy array needs (numpy's RNG state in checkpoints of earlier snn versions):
    the array reconstructor, ``ndarray`` and ``dtype`` (and, in numpy 2, the dtype classes)."""
    import importlib

    import numpy as np

    try:
        multiarray = importlib.import_module("numpy._core.multiarray")
    except ImportError:
        multiarray = importlib.import_module("numpy.core.multiarray")
    found = [multiarray._reconstruct, np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in ("UInt32DType", "Int64DType", "Float64DType") if hasattr(dtypes, n)]
    return found


def safe_torch_load(path, what: str = "checkpoint", map_location="cpu", allow_numpy: bool = False):
    """``torch.load`` that runs no code from the file: ``weights_only=True`` admits tensors, numbers, strings,
    lists, tuples, dicts and ``None`` (plus plain numpy arrays with ``allow_numpy``); anything else is an
    :class:`UnsafeFileError` naming the file and the refused object. The zip records' CRC-32 checksums are
    verified first. A missing path is a FileNotFoundError, a damaged file a ValueError, each naming the file
    as ``what``."""
    import pickle

    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} not found")
    if not path.is_file():
        raise ValueError(f"{what} {path} is not a regular file")
    _check_zip_checksums(path, what)
    extra = _numpy_array_globals() if allow_numpy else []
    try:
        with torch.serialization.safe_globals(extra), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing a file
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        refused = _refused(e)
        if refused:
            raise UnsafeFileError(f"{what} {path} holds objects that snn does not write and was refused unread "
                                  f"(only tensors and plain data are loaded): {refused}") from None
        raise ValueError(f"{what} {path} could not be read (damaged, or not a file snn wrote: "
                         f"{_unpickler_reason(e)})") from None
    except (PermissionError, IsADirectoryError):
        raise
    except Exception as e:  # noqa: BLE001 - torch raises many kinds on a damaged file
        raise ValueError(f"{what} {path} could not be read (damaged, or not a file snn wrote: "
                         f"{type(e).__name__}: {_first_line(e)})") from None


def _check_zip_checksums(path: Path, what: str) -> None:
    """torch's files are zip archives whose records carry CRC-32 checksums, which ``torch.load`` does not
    check: verify them, so that a damaged weight is an error rather than a silently different network."""
    import zipfile

    try:
        if not zipfile.is_zipfile(path):
            return  # torch's legacy format, or not a torch file: torch.load decides
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except Exception as e:  # noqa: BLE001 - zipfile raises many kinds on a damaged archive
        raise ValueError(f"{what} {path} could not be read (damaged archive: {type(e).__name__}: "
                         f"{_first_line(e)})") from None
    if bad is not None:
        raise ValueError(f"{what} {path} is damaged: its record {bad!r} fails its CRC-32 checksum")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


def _refused(e: BaseException) -> str | None:
    """The object torch's weights-only unpickler refused to build, from its long message (None: the file
    was refused for being malformed, not for what it holds)."""
    m = re.search(r"GLOBAL ([\w.]+)|call reduce for ([\w.]+)|Unsupported class ([\w.]+)", str(e), re.IGNORECASE)
    if not m:
        return None
    return f"GLOBAL {m.group(1)}" if m.group(1) else f"class {m.group(2) or m.group(3)}"


def _unpickler_reason(e: BaseException) -> str:
    m = re.search(r"WeightsUnpickler error: \s*(.+)", str(e))
    return m.group(1).strip().splitlines()[0] if m else _first_line(e)


# -- output paths, checked before work starts ------------------------------------------------------------

def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    return p


def _probe_dir(directory: Path, flag: str) -> None:
    """Create, fill, sync and remove a small temporary file in ``directory``: unwritable places and full disks
    fail here, before any work."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".snn-probe.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise _unwritable(flag, directory, e) from None
    try:
        os.write(fd, b"\0" * 4096)
        os.fsync(fd)
    except OSError as e:
        raise _unwritable(flag, directory, e) from None
    finally:
        os.close(fd)
        os.unlink(tmp)


def _unwritable(flag: str, directory: Path, e: OSError) -> OSError:
    reason = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
    return type(e)(e.errno, f"{flag}: cannot write into {directory} ({reason})")


def _writable_dir_above(target: Path, flag: str) -> None:
    """The nearest existing ancestor of ``target`` must be a writable directory (missing ones are made later)."""
    base = _nearest_existing(target.parent if target.parent != target else target)
    if not base.is_dir():
        raise ValueError(f"{flag} {target}: {base} is a file, not a directory")
    _probe_dir(base, flag)


def check_output_file(path, flag: str) -> None:
    """``path`` (a file to be written, e.g. ``--json``) must be a regular file or not exist yet, in a writable
    place; raises ValueError/OSError naming ``flag``. Nothing is left on disk."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a directory; give a file path")
    if path.exists() and not path.is_file():
        raise ValueError(f"{flag} {path} is not a regular file (results are written to a temporary file next to "
                         f"it, then renamed)")
    _writable_dir_above(path, flag)


def check_output_dir(path, flag: str) -> None:
    """``path`` (a directory to be written into, e.g. ``--out``) must be a directory or not exist yet, in a
    writable place; raises ValueError/OSError naming ``flag``. Nothing is left on disk."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path} exists and is not a directory")
    if path.is_dir():
        _probe_dir(path, flag)
    else:
        _writable_dir_above(path, flag)


def existing_results(directory, names) -> list[str]:
    """Which of the result files ``names`` (glob patterns) already exist in ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted({p.name for pattern in names for p in directory.glob(pattern) if p.is_file()})
