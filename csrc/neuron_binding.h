// The torch face of the generic neuron kernels: for a step functor F, `<name>_forward`, `<name>_backward` and
// `<name>_info` on a pybind11 module (snn._C for the built-in neurons, bindings.cpp; a user's module compiled
// on first use, snn/ops/compile.py). Header-only for that reason.
//
// Sequences are [steps, n] contiguous tensors, states [n], all of one floating dtype (float32/float64) on one
// device; the parameter block is a CPU float64 tensor of F::kParams values; StepOptions carries the flags,
// threshold comparison, detach_reset and surrogate. CPU tensors run csrc/cpu/scan.h; CUDA tensors the launchers
// of csrc/cuda (when built with SNN_WITH_CUDA). Reshaping, dtype casts and autograd live in snn/ops/cpp_backend.py.
#pragma once

#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "cpu/fresh.h"
#include "cpu/scan.h"
#include "dispatch.h"
#include "scan_args.h"

#ifdef SNN_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "cuda/launchers.h"
#endif

namespace snn {
namespace binding __attribute__((visibility("hidden"))) {  // as pybind11 wants its types

using at::Tensor;
using OptTensor = std::optional<Tensor>;

inline bool given(const OptTensor& t) { return t.has_value() && t->defined(); }

// Validation: sequences [steps, n], states [n], same dtype and device, contiguous.
inline void check_seq(const Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 2, "snn._C: ", name, " must be a 2-D [steps, n] tensor, got ", t.dim(), "-D");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, "snn._C: ", name,
              " must be float32 or float64, got ", t.scalar_type());
  TORCH_CHECK(t.is_contiguous(), "snn._C: ", name, " must be contiguous");
}
inline void check_like(const Tensor& t, const Tensor& ref, const std::string& name, bool is_seq) {
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), "snn._C: ", name, " has dtype ", t.scalar_type(), ", expected ",
              ref.scalar_type());
  TORCH_CHECK(t.device() == ref.device(), "snn._C: ", name, " is on ", t.device(), ", expected ", ref.device());
  TORCH_CHECK(t.is_contiguous(), "snn._C: ", name, " must be contiguous");
  if (is_seq) {
    TORCH_CHECK(t.sizes() == ref.sizes(), "snn._C: ", name, " has shape ", t.sizes(), ", expected ", ref.sizes());
  } else {
    TORCH_CHECK(t.dim() == 1 && t.size(0) == ref.size(1), "snn._C: ", name, " must have shape [", ref.size(1),
                "], got ", t.sizes());
  }
}
template <typename V>
inline void check_count(const V& v, int expected, const char* name, const char* neuron) {
  TORCH_CHECK(static_cast<int>(v.size()) == expected, "snn._C: ", neuron, " takes ", expected, " ", name, ", got ",
              v.size());
}

inline ParamBlock param_block(const Tensor& params, int expected, const char* neuron) {
  TORCH_CHECK(params.device().is_cpu() && params.scalar_type() == at::kDouble && params.dim() == 1,
              "snn._C: the parameter block of ", neuron, " must be a 1-D float64 CPU tensor");
  TORCH_CHECK(params.numel() == expected, "snn._C: ", neuron, " takes ", expected, " parameters, got ",
              params.numel());
  ParamBlock b;
  const Tensor p = params.contiguous();
  for (int i = 0; i < expected; ++i) b.v[i] = p.data_ptr<double>()[i];
  return b;
}

inline void check_options(const StepOptions& o, int num_flags, const char* neuron) {
  TORCH_CHECK(o.surrogate >= 0 && o.surrogate < kNumSurrogates, "snn._C: unknown surrogate kind ", o.surrogate,
              " (accepted 0..", kNumSurrogates - 1, ", see snn.surrogate)");
  TORCH_CHECK(o.flags < (1u << num_flags), "snn._C: ", neuron, " has ", num_flags, " flags, got the flag set ",
              o.flags);
}

// Runs `cpu(threads)` on CPU tensors or `gpu(stream)` on CUDA ones.
template <typename Cpu, typename Gpu>
void on_device(const Tensor& x, Cpu&& cpu, Gpu&& gpu) {
  if (x.is_cuda()) {
#ifdef SNN_WITH_CUDA
    const c10::cuda::CUDAGuard guard(x.device());
    gpu(static_cast<void*>(c10::cuda::getCurrentCUDAStream().stream()));
    return;
#else
    (void)gpu;
    TORCH_CHECK(false, "this snn extension was built without CUDA; rebuild with a CUDA torch and nvcc to run CUDA "
                       "tensors on it, or use backend='triton'");
#endif
  }
  TORCH_CHECK(x.device().is_cpu(), "snn._C: unsupported device ", x.device());
  cpu(at::get_num_threads());
}

// Runs the loops of F over `a` (ForwardArgs or BackwardArgs) on the device of `ref`.
template <template <typename, unsigned> class F, typename Args>
void launch(const Tensor& ref, Args& a, const ParamBlock& block, const StepOptions& o) {
  a.params = block;
  a.steps = ref.size(0);
  a.n = ref.size(1);
  on_device(
      ref, [&](int threads) { cpu::run<F>(a, o, threads); },
      [&](void* stream) {
#ifdef SNN_WITH_CUDA
        cuda::run<F>(a, o, stream);
#else
        (void)stream;
#endif
      });
}

template <typename T>
T* ptr(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}
template <typename T>
const T* ptr(const OptTensor& t) {
  return given(t) ? t->data_ptr<T>() : nullptr;
}

template <template <typename, unsigned> class F>
struct Neuron {
  using Info = F<float, 0>;
  static_assert(Info::kStates >= 1 && Info::kStates <= kMaxStates, "a step functor has 1..kMaxStates states");
  static_assert(Info::kSaved >= 1 && Info::kSaved <= kMaxSaved, "a step functor saves 1..kMaxSaved values");
  static_assert(Info::kParams <= kMaxParams && Info::kLearnable <= Info::kParams, "kParams <= kMaxParams");
  std::string name;

  // -> (spikes, states after the last step, saved sequences (empty unless save), v_seq (undefined unless record))
  std::tuple<Tensor, std::vector<Tensor>, std::vector<Tensor>, Tensor> forward(
      const Tensor& x, const std::vector<Tensor>& state0, const Tensor& params, const StepOptions& o, bool save,
      bool record) const {
    const char* who = name.c_str();
    check_seq(x, "x_seq");
    check_count(state0, Info::kStates, "initial states", who);
    for (int k = 0; k < Info::kStates; ++k) check_like(state0[k], x, "initial state " + std::to_string(k), false);
    check_options(o, Info::kFlags, who);
    const ParamBlock block = param_block(params, Info::kParams, who);
    Tensor spikes = fresh_like(x), v_seq = record ? fresh_like(x) : Tensor();
    std::vector<Tensor> last, saved;
    for (const auto& s : state0) last.push_back(at::empty_like(s));
    if (save)
      for (int k = 0; k < Info::kSaved; ++k) saved.push_back(fresh_like(x));
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "snn_neuron_forward", [&] {
      ForwardArgs<scalar_t> a;
      a.x = x.data_ptr<scalar_t>();
      a.spikes = spikes.data_ptr<scalar_t>();
      a.v_seq = ptr<scalar_t>(v_seq);
      for (int k = 0; k < Info::kStates; ++k) {
        a.state0[k] = state0[k].data_ptr<scalar_t>();
        a.state_last[k] = last[k].data_ptr<scalar_t>();
      }
      for (size_t k = 0; k < saved.size(); ++k) a.saved[k] = saved[k].data_ptr<scalar_t>();
      launch<F>(x, a, block, o);
    });
    return {spikes, last, saved, v_seq};
  }

  // -> (∂L/∂x, ∂L/∂states0, ∂L/∂learnable parameters (float64 [kLearnable]; undefined unless grad_params))
  std::tuple<Tensor, std::vector<Tensor>, Tensor> backward(
      const Tensor& grad_spikes, const std::vector<OptTensor>& grad_last, const OptTensor& grad_v_seq,
      const std::vector<Tensor>& saved, const OptTensor& x, const std::vector<Tensor>& state0, const Tensor& params,
      const StepOptions& o, bool grad_params) const {
    const char* who = name.c_str();
    check_count(saved, Info::kSaved, "saved sequences", who);
    check_count(grad_last, Info::kStates, "state gradients", who);
    check_count(state0, Info::kStates, "initial states", who);
    const Tensor& ref = saved[0];
    check_seq(ref, "saved");
    for (int k = 1; k < Info::kSaved; ++k) check_like(saved[k], ref, "saved " + std::to_string(k), true);
    check_like(grad_spikes, ref, "grad_spikes", true);
    if (given(grad_v_seq)) check_like(*grad_v_seq, ref, "grad_v_seq", true);
    for (int k = 0; k < Info::kStates; ++k) {
      if (given(grad_last[k])) check_like(*grad_last[k], ref, "state gradient " + std::to_string(k), false);
      check_like(state0[k], ref, "initial state " + std::to_string(k), false);
    }
    check_options(o, Info::kFlags, who);
    TORCH_CHECK(!grad_params || Info::kLearnable > 0, "snn._C: ", who, " has no learnable parameters");
    TORCH_CHECK(!grad_params || given(x), "snn._C: parameter gradients of ", who, " need x_seq");
    if (given(x)) check_like(*x, ref, "x_seq", true);
    const ParamBlock block = param_block(params, Info::kParams, who);
    Tensor grad_x = fresh_like(ref);
    std::vector<Tensor> grad0;
    for (const auto& s : state0) grad0.push_back(at::empty_like(s));
    Tensor gp = grad_params ? at::zeros({Info::kLearnable}, ref.options().dtype(at::kDouble)) : Tensor();
    AT_DISPATCH_FLOATING_TYPES(ref.scalar_type(), "snn_neuron_backward", [&] {
      BackwardArgs<scalar_t> a;
      a.grad_spikes = grad_spikes.data_ptr<scalar_t>();
      a.grad_v_seq = ptr<scalar_t>(grad_v_seq);
      a.x = ptr<scalar_t>(x);
      a.grad_x = grad_x.data_ptr<scalar_t>();
      a.grad_params = ptr<double>(gp);
      for (int k = 0; k < Info::kSaved; ++k) a.saved[k] = saved[k].data_ptr<scalar_t>();
      for (int k = 0; k < Info::kStates; ++k) {
        a.grad_last[k] = ptr<scalar_t>(grad_last[k]);
        a.state0[k] = state0[k].data_ptr<scalar_t>();
        a.grad_state0[k] = grad0[k].data_ptr<scalar_t>();
      }
      launch<F>(ref, a, block, o);
    });
    return {grad_x, grad0, gp};
  }
};

// The sizes of F, for the check that a spec and its functor agree.
template <template <typename, unsigned> class F>
pybind11::dict info() {
  using I = F<float, 0>;
  pybind11::dict d;
  d["states"] = I::kStates;
  d["saved"] = I::kSaved;
  d["params"] = I::kParams;
  d["learnable"] = I::kLearnable;
  d["record"] = I::kRecord;
  d["flags"] = I::kFlags;
  return d;
}

// `<name>_forward`, `<name>_backward`, `<name>_info` on module m.
template <template <typename, unsigned> class F>
void bind(pybind11::module_& m, const std::string& name) {
  namespace py = pybind11;
  const Neuron<F> neuron{name};
  m.def((name + "_forward").c_str(),
        [neuron](const Tensor& x, const std::vector<Tensor>& state0, const Tensor& params, const StepOptions& o,
                 bool save, bool record) { return neuron.forward(x, state0, params, o, save, record); },
        ("multi-step forward of " + name + " -> (spikes, states_last, saved, v_seq)").c_str(), py::arg("x"),
        py::arg("state0"), py::arg("params"), py::arg("options"), py::arg("save"), py::arg("record"));
  m.def((name + "_backward").c_str(),
        [neuron](const Tensor& gs, const std::vector<OptTensor>& glast, const OptTensor& gvseq,
                 const std::vector<Tensor>& saved, const OptTensor& x, const std::vector<Tensor>& state0,
                 const Tensor& params, const StepOptions& o, bool grad_params) {
          return neuron.backward(gs, glast, gvseq, saved, x, state0, params, o, grad_params);
        },
        ("multi-step backward of " + name + " -> (grad_x, grad_states0, grad_params)").c_str(),
        py::arg("grad_spikes"), py::arg("grad_last"), py::arg("grad_v_seq"), py::arg("saved"), py::arg("x"),
        py::arg("state0"), py::arg("params"), py::arg("options"), py::arg("grad_params"));
  m.def((name + "_info").c_str(), &info<F>, ("the sizes of the " + name + " step functor").c_str());
}

// Defines `void bind_<F>(m)` (the three functions of `bind<F>`) for every functor F of a group such as
// SNN_BUILTIN_NEURONS_A: one translation unit per group, so that the groups compile in parallel.
#define SNN_BIND_ONE_NEURON(F) \
  void bind_##F(pybind11::module_& m) { bind<snn::F>(m, #F); }
#define SNN_DEFINE_NEURON_BINDINGS(GROUP) GROUP(SNN_BIND_ONE_NEURON)

// What every neuron module shares: StepOptions (local to the module, so several modules can each have it).
inline void bind_common(pybind11::module_& m) {
  namespace py = pybind11;
  py::class_<StepOptions>(m, "StepOptions", py::module_local())
      .def(py::init([](unsigned flags, bool strict, bool detach_reset, int surrogate, double a, double c) {
             return StepOptions{flags, strict, detach_reset, surrogate, a, c};
           }),
           py::arg("flags"), py::arg("strict"), py::arg("detach_reset"), py::arg("surrogate"), py::arg("a"),
           py::arg("c"))
      .def_readonly("flags", &StepOptions::flags)
      .def_readonly("strict", &StepOptions::strict)
      .def_readonly("detach_reset", &StepOptions::detach_reset)
      .def_readonly("surrogate", &StepOptions::surrogate)
      .def_readonly("a", &StepOptions::a)
      .def_readonly("c", &StepOptions::c);
#ifdef SNN_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
}

}  // namespace binding
}  // namespace snn
