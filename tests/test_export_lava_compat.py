"""lava-nc 0.10.0 imports on this Python through snn.export.lava_compat, idempotently, in a fresh interpreter."""
import subprocess
import sys

import pytest

from snn.export import lava_compat

pytest.importorskip("lava", reason="lava-nc not installed")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="lava imports unpatched before 3.11")
def test_unpatched_import_fails_and_patched_import_works():
    bad = _run("import lava.magma.compiler.var_model")
    assert bad.returncode != 0 and "mutable default" in bad.stderr
    good = _run("from snn.export import lava_compat as c; c.install(); c.install(); "
                "import sys; from lava.proc.lif.process import LIF; from lava.magma.core.run_configs import "
                "Loihi2SimCfg; import lava.magma.compiler.var_model as vm; "
                "assert sum(type(f).__name__ == '_PatchingFinder' for f in sys.meta_path) == 1; "
                "assert vm.CoreEncoder().x is not vm.CoreEncoder().x; print('ok')")
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == "ok"


def test_patch_source_is_idempotent_and_targeted():
    src = ("from dataclasses import dataclass, InitVar\n@dataclass\nclass CoreEncoder:\n"
           "    x: ByteEncoder = ByteEncoder()\n    y: int = 0\n")
    once = lava_compat.patch_source("lava.magma.compiler.var_model", src)
    assert "default_factory=ByteEncoder" in once and "= ByteEncoder()" not in once
    assert lava_compat.patch_source("lava.magma.compiler.var_model", once) == once
    assert lava_compat.patch_source("some.other.module", src) == src


def test_install_is_idempotent_and_import_lava_works():
    lava_compat.install()
    lava_compat.install()
    assert sum(isinstance(f, lava_compat._PatchingFinder) for f in sys.meta_path) <= 1
    assert lava_compat.import_lava("lava.proc.lif.process").LIF is not None


def test_missing_lava_module_gives_install_hint():
    with pytest.raises(lava_compat.LavaUnavailable, match="pip install"):
        lava_compat.import_lava("lava.no_such_module_xyz")


def test_lava_imports_after_the_start_method_was_fixed_elsewhere():
    # torch.distributed, DataLoader workers or multiprocessing.get_start_method() fix the start method;
    # Lava's own unguarded set_start_method('fork') would then raise "context has already been set".
    out = _run("import multiprocessing as mp; mp.set_start_method('spawn'); "
               "from snn.export import lava_compat as c; "
               "c.import_lava('lava.magma.runtime.message_infrastructure.multiprocessing'); "
               "print(mp.get_start_method())")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fork"
