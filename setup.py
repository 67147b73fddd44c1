"""Build script: the pure-Python package ``snn``, the Triton kernels (``kernels/`` installed as
``snn.kernels``) and, when ``csrc/`` has sources, the compiled extension ``snn._C``
(C++/OpenMP always; CUDA too when torch has CUDA and nvcc is found)."""
import glob
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _extensions():
    cpp = sorted(glob.glob("csrc/*.cpp"))
    if not cpp or os.environ.get("SNN_NO_EXT") == "1":
        return [], {}
    import torch
    from torch.utils import cpp_extension as ce

    # No -ffast-math and no FMA contraction: the kernels must round exactly like the torch reference.
    # -fno-trapping-math changes no result (nothing reads FP exception flags); it lets branch-free
    # selects in the kernels (clamps, resets) vectorise.
    cxx = ["-O3", "-fopenmp", "-std=c++17", "-ffp-contract=off", "-fno-trapping-math"]
    kwargs = dict(extra_compile_args={"cxx": cxx}, extra_link_args=["-fopenmp"],
                  include_dirs=[os.path.join(HERE, "csrc")],
                  # rebuild when a header changes
                  depends=sorted(glob.glob("csrc/**/*.h", recursive=True) + glob.glob("csrc/**/*.cuh", recursive=True)))
    cu = sorted(glob.glob("csrc/cuda/*.cu"))
    use_cuda = bool(cu) and torch.version.cuda is not None and ce.CUDA_HOME is not None \
        and os.environ.get("SNN_NO_CUDA") != "1"
    if use_cuda:
        kwargs["extra_compile_args"]["nvcc"] = ["-O3", "--fmad=false"]
        kwargs["extra_compile_args"]["cxx"] = cxx + ["-DSNN_WITH_CUDA"]
        ext = ce.CUDAExtension("snn._C", cpp + cu, **kwargs)
    else:
        ext = ce.CppExtension("snn._C", cpp, **kwargs)
    # ninja compiles the translation units in parallel (torch falls back to one at a time without it).
    return [ext], {"build_ext": ce.BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = _extensions()

setup(
    packages=find_packages(include=["snn", "snn.*"]) + ["snn.kernels"],
    package_dir={"snn.kernels": "kernels"},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
