"""Your own neuron, in your own code: a spec with its step in torch, C++ and Triton gets snn's fused kernels
(README: "Your own neuron"). Run it: ``python examples/user_neuron.py`` (add ``TRITON_INTERPRET=1`` to run the
Triton kernel on the CPU). The neuron: V ← λ·V + X, fire at V_th, reset to 0."""
import torch

import snn
from snn.neurons import CppStep, NeuronSpec, Param, State, TritonStep

# The step in torch: the reference every backend must equal (backend='torch' runs it).
def charge(x, st, p, f):                  # -> membrane H, threshold θ, states
    return p.lam * st[0] + x, p.v_threshold, st

def reset(h, theta, s, sr, st, p, f):     # s: the spike; sr: the spike where it resets
    return (h * (1.0 - sr),)

# The same step in C++ (snn compiles it on first use and caches it in $SNN_CACHE_DIR).
CPP = r"""
template <typename T, unsigned FLAGS>
struct MyLIFStep {
  static constexpr int kStates = 1, kSaved = 1, kParams = 2, kLearnable = 0, kRecord = 0, kFlags = 0;
  T lam, vth;
  SNN_HD explicit MyLIFStep(const double* p) : lam(T(p[0])), vth(T(p[1])) {}
  SNN_HD void charge(T x, T* st, T& h, T& theta, T*) const { h = lam * st[0] + x; theta = vth; }
  SNN_HD void reset(T h, T, T s, T* st) const { st[0] = s != T(0) ? T(0) : h; }
  template <bool LEARN>  // sv[0] = H - θ; g: ∂L/∂V after the step in, before it out; returns ∂L/∂X
  SNN_HD T backward(const T* sv, T s, T sg, T gs, T keep, T* g, const T*, T, T*) const {
    const T gh = g[0] * (T(1) - s) + (gs - keep * g[0] * (sv[0] + vth)) * sg;
    g[0] = gh * lam;
    return gh;
  }
};
"""

# The same step for Triton (GPUs; on the CPU under TRITON_INTERPRET=1).
try:
    import triton
    import triton.language as tl
except ImportError:  # no Triton: torch and cpp still run
    triton = None

if triton is not None:
    @triton.jit
    def tl_charge(x, st, p, FLAGS: tl.constexpr):
        return p[0] * st[0] + x, p[1], st, ()

    @triton.jit
    def tl_reset(h, theta, s, st, p, FLAGS: tl.constexpr):
        return (h * (1.0 - s),)

    @triton.jit
    def tl_backward(sv, s, sg, gs, g, prev, x, p, FLAGS: tl.constexpr, KEEP: tl.constexpr, LEARN: tl.constexpr):
        keep = 1.0 if KEEP else 0.0           # KEEP: S is not detached in the reset
        gh = g[0] * (1.0 - s) + (gs - keep * g[0] * (sv[0] + p[1])) * sg
        return gh, (gh * p[0],), ()

MY_LIF = NeuronSpec(
    name="my_lif", states=(State("v"),),
    params=(Param("lam", 0.9, low=0.0, high=1.0), Param("v_threshold", 1.0, low=0.0, low_open=True)),
    kernel_params=("lam", "v_threshold"), charge=charge, reset=reset,
    cpp=CppStep("MyLIFStep", source=CPP),
    triton=TritonStep(tl_charge, tl_reset, tl_backward) if triton is not None else None)

class MyLIF(snn.neuron.BaseNeuron):
    spec = MY_LIF

if __name__ == "__main__":
    x = torch.rand(16, 4, 256) * 0.3                 # [T, B, N]
    ref = MyLIF(step_mode="m", backend="torch")(x)
    print("cpp equals torch:", torch.equal(MyLIF(step_mode="m", backend="cpp")(x), ref))
    if "triton" in snn.ops.available_backends():
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        out = MyLIF(step_mode="m", backend="triton")(x.to(dev))
        print("triton equals torch:", torch.equal(out.cpu(), ref))
