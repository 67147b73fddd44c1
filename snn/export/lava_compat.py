"""The one place that makes lava-nc 0.10.0 import on Python >= 3.11.

lava-nc 0.10.0 declares ``python < 3.11``. On 3.11 its only hard failure is at import time:
``lava/magma/compiler/var_model.py`` gives dataclass fields mutable defaults
(``x: ByteEncoder = ByteEncoder()``), which Python 3.11's ``dataclasses`` rejects because
the default is an unhashable dataclass instance. The fix is to read such a default as
``field(default_factory=ByteEncoder)``, which is what the authors meant.

Rather than editing site-packages (CI installs from scratch), :func:`install` puts a meta-path
finder in front of the normal one. For the modules listed in :data:`PATCHES` it loads the
installed source, applies the textual replacements in memory and compiles the result (never
writing bytecode of the patched text). Everything else in lava loads untouched.

Every other snn module imports lava through :func:`import_lava` (or after calling
:func:`install`), never directly. ``install`` is idempotent; it is a no-op on Python < 3.11.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys

__all__ = ["install", "uninstall", "is_installed", "import_lava", "patch_source", "PATCHES", "LavaUnavailable"]

#: module name -> list of (regex, replacement) applied to its source text.
PATCHES: dict[str, list[tuple[str, str]]] = {
    "lava.magma.compiler.var_model": [
        # `name: ByteEncoder = ByteEncoder()`  ->  `name: ByteEncoder = field(default_factory=ByteEncoder)`
        (r"^(\s+\w+:\s*ByteEncoder\s*=\s*)ByteEncoder\(\)\s*$", r"\1_lava_compat_field(default_factory=ByteEncoder)"),
        # make `field` available under a name the original file cannot clash with
        (r"^from dataclasses import dataclass, InitVar\s*$",
         "from dataclasses import dataclass, InitVar, field as _lava_compat_field"),
    ],
    # Lava needs the 'fork' start method and sets it at import time, which raises "context has already
    # been set" when anything in the process fixed the start method before (torch.distributed, a DataLoader
    # with workers, multiprocessing.get_start_method()). Set it only where it differs, with force.
    "lava.magma.runtime.message_infrastructure.multiprocessing": [
        (r"^(\s+)mp\.set_start_method\('fork'\)\s*$",
         r"\1if mp.get_start_method(allow_none=True) != 'fork':\n\1    mp.set_start_method('fork', force=True)"),
    ],
}


class LavaUnavailable(ImportError):
    """lava-nc is not installed (``pip install 'snn[export]'``) or cannot be imported here."""


def patch_source(name: str, source: str) -> str:
    """Apply :data:`PATCHES` for module ``name`` to ``source``; already-patched text is left unchanged."""
    for pattern, repl in PATCHES.get(name, ()):
        source = re.sub(pattern, repl, source, flags=re.MULTILINE)
    return source


class _PatchingLoader(importlib.machinery.SourceFileLoader):
    """Loads a module from its source file with :func:`patch_source` applied; bypasses the bytecode cache."""

    def get_code(self, fullname):
        path = self.get_filename(fullname)
        source = importlib.util.decode_source(self.get_data(path))
        return compile(patch_source(fullname, source), path, "exec", dont_inherit=True)


class _PatchingFinder(importlib.abc.MetaPathFinder):
    """Finds the modules in :data:`PATCHES` through the normal path finder, then swaps in the patching loader."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        spec.loader = _PatchingLoader(fullname, spec.origin)
        return spec


def _needed() -> bool:
    return sys.version_info >= (3, 11)


def is_installed() -> bool:
    return any(isinstance(f, _PatchingFinder) for f in sys.meta_path)


def install() -> bool:
    """Put the patching finder first on ``sys.meta_path`` (once). Returns True if it is (now) installed.

    Must run before ``lava.magma.compiler.var_model`` is first imported; if that module is already in
    ``sys.modules`` unpatched (it cannot be: its import fails), nothing is reloaded.
    """
    if not _needed():
        return False
    if not is_installed():
        sys.meta_path.insert(0, _PatchingFinder())
    return True


def uninstall() -> None:
    """Remove the finder (for tests); modules already imported stay as they are."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _PatchingFinder)]


def import_lava(module: str = "lava"):
    """Install the fix, then import and return ``module`` (e.g. ``'lava.proc.lif.process'``).

    Raises :class:`LavaUnavailable` with an install hint when lava-nc is missing.
    """
    install()
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (e.name == "lava" or e.name.startswith("lava.")):
            raise LavaUnavailable(f"lava-nc is needed for this ({module}); install it with "
                                  f"`pip install 'snn[export]'` (lava-nc==0.10.0)") from e
        raise
