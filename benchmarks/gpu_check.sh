#!/usr/bin/env bash
# GPU check: build the CUDA extension, run the CUDA/Triton tests on the GPU, then the GPU benchmarks.
# Meant for a lent GPU machine whose python3 already holds a CUDA torch and Triton (nothing is installed);
# finishes in about 8 minutes on an H100/H200. Writes its logs and JSON under $OUT (default ./gpu_check_out).
#
#   bash benchmarks/gpu_check.sh            # everything
#   QUICK=1 bash benchmarks/gpu_check.sh    # build + tests only
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0
step() { echo; echo "== $* =="; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || { echo "no GPU: nothing to check"; exit 2; }
$PY -c 'import torch, triton; print("torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__,
"device", torch.cuda.get_device_name(0))' || exit 2

step "build the extension with CUDA (csrc/cuda/*.cu)"
MAX_JOBS=16 timeout 300 $PY setup.py -q build_ext --inplace >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
$PY -c 'import snn, snn.ops as o; print("backends:", o.available_backends())' | tee "$OUT/backends.txt"

step "CUDA and Triton conformance and kernel tests on the GPU"
TESTS="tests/test_conformance.py tests/test_kernels_triton.py tests/test_kernels_cpp.py tests/test_neuron_api.py
tests/test_half_precision.py tests/test_threshold_semantics.py tests/test_neurons_new.py tests/test_neuron_user.py"
[ -f tests/test_compile.py ] && TESTS="$TESTS tests/test_compile.py"
existing=$(for t in $TESTS; do [ -f "$t" ] && echo "$t"; done)
timeout 300 $PY -m pytest -q -x -p no:cacheprovider $existing --junitxml="$OUT/tests.xml" 2>&1 | tee "$OUT/tests.log" | tail -30
[ "${PIPESTATUS[0]}" = 0 ] || status=1

if [ "${QUICK:-0}" != 1 ]; then
  step "LIF throughput on the GPU (cuda and triton backends vs the peers present)"
  timeout 150 $PY benchmarks/lif_throughput.py --device cuda --T 16 --N 1048576 --repeat 5 \
      --json "$OUT/lif_throughput_gpu.json" --png "$OUT/lif_throughput_gpu.png" 2>&1 | tail -25 || status=1
fi
echo; echo "gpu_check: $([ $status = 0 ] && echo ok || echo FAILED) (logs in $OUT)"
exit $status
