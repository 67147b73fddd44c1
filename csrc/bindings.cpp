// pybind11/torch bindings of the fused neuron kernels -> module snn._C.
//
// Each function takes [steps, n] contiguous sequences and [n] states of one floating
// dtype (float32/float64) on one device, checks them, allocates the outputs and calls
// the CPU kernel (csrc/cpu) or, when built with CUDA, the CUDA launcher (csrc/cuda).
// Reshaping, dtype casts and autograd live in snn/ops/cpp_backend.py and cuda_backend.py.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <optional>
#include <string>
#include <tuple>

#include "cpu/chunks.h"
#include "cpu/cpu_kernels.h"
#include "neuron_math.h"
#include "neuron_params.h"

#ifdef SNN_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "cuda/launchers.h"
#endif

namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

template <typename T>
const T* cptr(const OptTensor& t) {
  return t.has_value() && t->defined() ? t->data_ptr<T>() : nullptr;
}
template <typename T>
T* mptr(const OptTensor& t) {
  return t.has_value() && t->defined() ? t->data_ptr<T>() : nullptr;
}

// Validation: sequences [steps, n], states [n], same dtype and device, contiguous.
void check_seq(const Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 2, "snn._C: ", name, " must be a 2-D [steps, n] tensor, got ", t.dim(), "-D");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, "snn._C: ", name,
              " must be float32 or float64, got ", t.scalar_type());
  TORCH_CHECK(t.is_contiguous(), "snn._C: ", name, " must be contiguous");
}
void check_like(const Tensor& t, const Tensor& ref, const char* name, bool is_seq) {
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), "snn._C: ", name, " has dtype ", t.scalar_type(),
              ", expected ", ref.scalar_type());
  TORCH_CHECK(t.device() == ref.device(), "snn._C: ", name, " is on ", t.device(), ", expected ", ref.device());
  TORCH_CHECK(t.is_contiguous(), "snn._C: ", name, " must be contiguous");
  if (is_seq) {
    TORCH_CHECK(t.sizes() == ref.sizes(), "snn._C: ", name, " has shape ", t.sizes(), ", expected ", ref.sizes());
  } else {
    TORCH_CHECK(t.dim() == 1 && t.size(0) == ref.size(1), "snn._C: ", name, " must have shape [", ref.size(1),
                "], got ", t.sizes());
  }
}
void check_opt(const OptTensor& t, const Tensor& ref, const char* name, bool is_seq) {
  if (t.has_value() && t->defined()) check_like(*t, ref, name, is_seq);
}
Tensor maybe_empty(bool want, const Tensor& like) { return want ? at::empty_like(like) : Tensor(); }
OptTensor opt(const Tensor& t) { return t.defined() ? OptTensor(t) : std::nullopt; }

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
    TORCH_CHECK(false, "snn._C was built without CUDA; rebuild with a CUDA torch and nvcc for the cuda backend");
#endif
  }
  TORCH_CHECK(x.device().is_cpu(), "snn._C: unsupported device ", x.device());
  cpu(at::get_num_threads());
}

#ifdef SNN_WITH_CUDA
#define SNN_GPU(call) [&](void* stream) { snn::cuda::call; }
#else
#define SNN_GPU(call) [&](void*) {}
#endif

snn::LifParams lif_params(double decay, double v_threshold, double v_reset, bool hard_reset, bool decay_input,
                          bool detach_reset, int64_t surrogate, double alpha, bool strict_threshold) {
  TORCH_CHECK(surrogate >= 0 && surrogate < snn::kNumSurrogates, "snn._C: unknown surrogate kind ", surrogate,
              " (accepted 0..4, see snn.surrogate.KINDS)");
  snn::LifParams p;
  p.decay = decay;
  p.v_threshold = v_threshold;
  p.v_reset = hard_reset ? v_reset : 0.0;
  p.hard_reset = hard_reset;
  p.decay_input = decay_input;
  p.detach_reset = detach_reset;
  p.strict_threshold = strict_threshold;
  p.surrogate = static_cast<int>(surrogate);
  p.alpha = alpha;
  return p;
}

// ---- LIF ------------------------------------------------------------------------------------
std::tuple<Tensor, Tensor, Tensor, Tensor> lif_forward(const Tensor& x, const Tensor& v0, double decay,
                                                       double v_threshold, double v_reset, bool hard_reset,
                                                       bool decay_input, bool save_h, bool record_v,
                                                       bool strict_threshold) {
  check_seq(x, "x_seq");
  check_like(v0, x, "v_init", false);
  const auto p = lif_params(decay, v_threshold, v_reset, hard_reset, decay_input, false, 0, 1.0, strict_threshold);
  Tensor spikes = at::empty_like(x), v_last = at::empty_like(v0);
  Tensor h_seq = maybe_empty(save_h, x), v_seq = maybe_empty(record_v, x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "snn_lif_forward", [&] {
    snn::LifForward<scalar_t> a{x.data_ptr<scalar_t>(), v0.data_ptr<scalar_t>(), spikes.data_ptr<scalar_t>(),
                                v_last.data_ptr<scalar_t>(), mptr<scalar_t>(opt(h_seq)), mptr<scalar_t>(opt(v_seq)),
                                x.size(0), x.size(1)};
    on_device(x, [&](int threads) { snn::cpu::lif_forward(a, p, threads); }, SNN_GPU(lif_forward(a, p, stream)));
  });
  return {spikes, v_last, h_seq, v_seq};
}

std::tuple<Tensor, Tensor, Tensor> lif_backward(const Tensor& grad_spikes, const OptTensor& grad_v_last,
                                                const OptTensor& grad_v_seq, const Tensor& h_seq, const OptTensor& x,
                                                const Tensor& v0, double decay, double v_threshold, double v_reset,
                                                bool hard_reset, bool decay_input, bool detach_reset,
                                                int64_t surrogate, double alpha, bool grad_decay, bool strict_threshold) {
  check_seq(h_seq, "h_seq");
  check_like(grad_spikes, h_seq, "grad_spikes", true);
  check_opt(grad_v_last, h_seq, "grad_v_last", false);
  check_opt(grad_v_seq, h_seq, "grad_v_seq", true);
  check_opt(x, h_seq, "x_seq", true);
  check_like(v0, h_seq, "v_init", false);
  TORCH_CHECK(!(grad_decay && decay_input && !(x.has_value() && x->defined())),
              "snn._C: the decay gradient with decay_input=True needs x_seq");
  const auto p = lif_params(decay, v_threshold, v_reset, hard_reset, decay_input, detach_reset, surrogate, alpha,
                            strict_threshold);
  Tensor grad_x = at::empty_like(h_seq), grad_v0 = at::empty_like(v0);
  Tensor gd = grad_decay ? at::zeros({1}, h_seq.options().dtype(at::kDouble)) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(h_seq.scalar_type(), "snn_lif_backward", [&] {
    snn::LifBackward<scalar_t> a{grad_spikes.data_ptr<scalar_t>(), cptr<scalar_t>(grad_v_last),
                                 cptr<scalar_t>(grad_v_seq), h_seq.data_ptr<scalar_t>(), cptr<scalar_t>(x),
                                 v0.data_ptr<scalar_t>(), grad_x.data_ptr<scalar_t>(), grad_v0.data_ptr<scalar_t>(),
                                 mptr<double>(opt(gd)), h_seq.size(0), h_seq.size(1)};
    on_device(h_seq, [&](int threads) { snn::cpu::lif_backward(a, p, threads); },
              SNN_GPU(lif_backward(a, p, stream)));
  });
  return {grad_x, grad_v0, gd};
}

// ---- ALIF -----------------------------------------------------------------------------------
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> alif_forward(
    const Tensor& x, const Tensor& v0, const Tensor& b0, double decay, double rho, double beta, double v_threshold,
    double v_reset, bool hard_reset, bool decay_input, bool save, bool record_v, bool strict_threshold) {
  check_seq(x, "x_seq");
  check_like(v0, x, "v_init", false);
  check_like(b0, x, "b_init", false);
  snn::AlifParams p;
  p.lif = lif_params(decay, v_threshold, v_reset, hard_reset, decay_input, false, 0, 1.0, strict_threshold);
  p.rho = rho;
  p.beta = beta;
  Tensor spikes = at::empty_like(x), v_last = at::empty_like(v0), b_last = at::empty_like(b0);
  Tensor h_seq = maybe_empty(save, x), b_seq = maybe_empty(save, x), v_seq = maybe_empty(record_v, x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "snn_alif_forward", [&] {
    snn::AlifForward<scalar_t> a{x.data_ptr<scalar_t>(), v0.data_ptr<scalar_t>(), b0.data_ptr<scalar_t>(),
                                 spikes.data_ptr<scalar_t>(), v_last.data_ptr<scalar_t>(), b_last.data_ptr<scalar_t>(),
                                 mptr<scalar_t>(opt(h_seq)), mptr<scalar_t>(opt(b_seq)), mptr<scalar_t>(opt(v_seq)),
                                 x.size(0), x.size(1)};
    on_device(x, [&](int threads) { snn::cpu::alif_forward(a, p, threads); }, SNN_GPU(alif_forward(a, p, stream)));
  });
  return {spikes, v_last, b_last, h_seq, b_seq, v_seq};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> alif_backward(
    const Tensor& grad_spikes, const OptTensor& grad_v_last, const OptTensor& grad_b_last, const OptTensor& grad_v_seq,
    const Tensor& h_seq, const Tensor& b_seq, const OptTensor& x, const Tensor& v0, const Tensor& b0, double decay,
    double rho, double beta, double v_threshold, double v_reset, bool hard_reset, bool decay_input, bool detach_reset,
    int64_t surrogate, double alpha, bool grad_decay, bool strict_threshold) {
  check_seq(h_seq, "h_seq");
  check_like(b_seq, h_seq, "b_seq", true);
  check_like(grad_spikes, h_seq, "grad_spikes", true);
  check_opt(grad_v_last, h_seq, "grad_v_last", false);
  check_opt(grad_b_last, h_seq, "grad_b_last", false);
  check_opt(grad_v_seq, h_seq, "grad_v_seq", true);
  check_opt(x, h_seq, "x_seq", true);
  check_like(v0, h_seq, "v_init", false);
  check_like(b0, h_seq, "b_init", false);
  TORCH_CHECK(!(grad_decay && decay_input && !(x.has_value() && x->defined())),
              "snn._C: the decay gradient with decay_input=True needs x_seq");
  snn::AlifParams p;
  p.lif = lif_params(decay, v_threshold, v_reset, hard_reset, decay_input, detach_reset, surrogate, alpha,
                     strict_threshold);
  p.rho = rho;
  p.beta = beta;
  Tensor grad_x = at::empty_like(h_seq), grad_v0 = at::empty_like(v0), grad_b0 = at::empty_like(b0);
  Tensor gd = grad_decay ? at::zeros({1}, h_seq.options().dtype(at::kDouble)) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(h_seq.scalar_type(), "snn_alif_backward", [&] {
    snn::AlifBackward<scalar_t> a{grad_spikes.data_ptr<scalar_t>(), cptr<scalar_t>(grad_v_last),
                                  cptr<scalar_t>(grad_b_last), cptr<scalar_t>(grad_v_seq), h_seq.data_ptr<scalar_t>(),
                                  b_seq.data_ptr<scalar_t>(), cptr<scalar_t>(x), v0.data_ptr<scalar_t>(),
                                  b0.data_ptr<scalar_t>(), grad_x.data_ptr<scalar_t>(), grad_v0.data_ptr<scalar_t>(),
                                  grad_b0.data_ptr<scalar_t>(), mptr<double>(opt(gd)), h_seq.size(0), h_seq.size(1)};
    on_device(h_seq, [&](int threads) { snn::cpu::alif_backward(a, p, threads); },
              SNN_GPU(alif_backward(a, p, stream)));
  });
  return {grad_x, grad_v0, grad_b0, gd};
}

// ---- CUBALIF --------------------------------------------------------------------------------
snn::CubaParams cuba_params(double cu, double cv, double v_threshold, double bias, bool detach_reset,
                            int64_t surrogate, double alpha) {
  TORCH_CHECK(surrogate >= 0 && surrogate < snn::kNumSurrogates, "snn._C: unknown surrogate kind ", surrogate,
              " (accepted 0..4, see snn.surrogate.KINDS)");
  snn::CubaParams p;
  p.cu = cu;
  p.cv = cv;
  p.v_threshold = v_threshold;
  p.bias = bias;
  p.detach_reset = detach_reset;
  p.surrogate = static_cast<int>(surrogate);
  p.alpha = alpha;
  return p;
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> cubalif_forward(const Tensor& x, const Tensor& u0,
                                                                   const Tensor& v0, double cu, double cv,
                                                                   double v_threshold, double bias, bool save,
                                                                   bool record_v) {
  check_seq(x, "x_seq");
  check_like(u0, x, "u_init", false);
  check_like(v0, x, "v_init", false);
  const auto p = cuba_params(cu, cv, v_threshold, bias, false, 0, 1.0);
  Tensor spikes = at::empty_like(x), u_last = at::empty_like(u0), v_last = at::empty_like(v0);
  Tensor vpre = maybe_empty(save, x), v_seq = maybe_empty(record_v, x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "snn_cubalif_forward", [&] {
    snn::CubaForward<scalar_t> a{x.data_ptr<scalar_t>(), u0.data_ptr<scalar_t>(), v0.data_ptr<scalar_t>(),
                                 spikes.data_ptr<scalar_t>(), u_last.data_ptr<scalar_t>(), v_last.data_ptr<scalar_t>(),
                                 mptr<scalar_t>(opt(vpre)), mptr<scalar_t>(opt(v_seq)), x.size(0), x.size(1)};
    on_device(x, [&](int threads) { snn::cpu::cubalif_forward(a, p, threads); },
              SNN_GPU(cubalif_forward(a, p, stream)));
  });
  return {spikes, u_last, v_last, vpre, v_seq};
}

std::tuple<Tensor, Tensor, Tensor> cubalif_backward(const Tensor& grad_spikes, const OptTensor& grad_u_last,
                                                    const OptTensor& grad_v_last, const OptTensor& grad_v_seq,
                                                    const Tensor& vpre_seq, double cu, double cv, double v_threshold,
                                                    bool detach_reset, int64_t surrogate, double alpha) {
  check_seq(vpre_seq, "vpre_seq");
  check_like(grad_spikes, vpre_seq, "grad_spikes", true);
  check_opt(grad_u_last, vpre_seq, "grad_u_last", false);
  check_opt(grad_v_last, vpre_seq, "grad_v_last", false);
  check_opt(grad_v_seq, vpre_seq, "grad_v_seq", true);
  const auto p = cuba_params(cu, cv, v_threshold, 0.0, detach_reset, surrogate, alpha);
  Tensor grad_x = at::empty_like(vpre_seq);
  Tensor grad_u0 = at::empty({vpre_seq.size(1)}, vpre_seq.options());
  Tensor grad_v0 = at::empty({vpre_seq.size(1)}, vpre_seq.options());
  AT_DISPATCH_FLOATING_TYPES(vpre_seq.scalar_type(), "snn_cubalif_backward", [&] {
    snn::CubaBackward<scalar_t> a{grad_spikes.data_ptr<scalar_t>(), cptr<scalar_t>(grad_u_last),
                                  cptr<scalar_t>(grad_v_last), cptr<scalar_t>(grad_v_seq),
                                  vpre_seq.data_ptr<scalar_t>(), grad_x.data_ptr<scalar_t>(),
                                  grad_u0.data_ptr<scalar_t>(), grad_v0.data_ptr<scalar_t>(), vpre_seq.size(0),
                                  vpre_seq.size(1)};
    on_device(vpre_seq, [&](int threads) { snn::cpu::cubalif_backward(a, p, threads); },
              SNN_GPU(cubalif_backward(a, p, stream)));
  });
  return {grad_x, grad_u0, grad_v0};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "snn compiled neuron kernels (C++/OpenMP, and CUDA when built with it); see snn/ops/cpp_backend.py";
#ifdef SNN_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  namespace py = pybind11;
  m.def("streaming_isa", &snn::cpu::streaming_isa,
        "Streaming (non-temporal) stores in use: 2 AVX-512F, 1 AVX, 0 none (ordinary copies)");
  m.def(
      "set_stream_threshold",
      [](int64_t bytes) {
        TORCH_CHECK(bytes >= 0, "snn._C.set_stream_threshold: bytes must be >= 0, got ", bytes);
        const int64_t previous = snn::cpu::stream_threshold();
        snn::cpu::stream_threshold() = bytes;
        return previous;
      },
      "Outputs of at least this many bytes are written with streaming stores; returns the previous value",
      py::arg("bytes"));
  m.def("lif_forward", &lif_forward, "IF/LIF/PLIF multi-step forward -> (spikes, v_last, h_seq?, v_seq?)",
        py::arg("x"), py::arg("v0"), py::arg("decay"), py::arg("v_threshold"), py::arg("v_reset"),
        py::arg("hard_reset"), py::arg("decay_input"), py::arg("save_h"), py::arg("record_v"),
        py::arg("strict_threshold") = false);
  m.def("lif_backward", &lif_backward, "IF/LIF/PLIF multi-step backward -> (grad_x, grad_v0, grad_decay?)",
        py::arg("grad_spikes"), py::arg("grad_v_last"), py::arg("grad_v_seq"), py::arg("h_seq"), py::arg("x"),
        py::arg("v0"), py::arg("decay"), py::arg("v_threshold"), py::arg("v_reset"), py::arg("hard_reset"),
        py::arg("decay_input"), py::arg("detach_reset"), py::arg("surrogate"), py::arg("alpha"),
        py::arg("grad_decay"), py::arg("strict_threshold") = false);
  m.def("alif_forward", &alif_forward,
        "ALIF multi-step forward -> (spikes, v_last, b_last, h_seq?, b_seq?, v_seq?)", py::arg("x"), py::arg("v0"),
        py::arg("b0"), py::arg("decay"), py::arg("rho"), py::arg("beta"), py::arg("v_threshold"), py::arg("v_reset"),
        py::arg("hard_reset"), py::arg("decay_input"), py::arg("save"), py::arg("record_v"),
        py::arg("strict_threshold") = false);
  m.def("alif_backward", &alif_backward, "ALIF multi-step backward -> (grad_x, grad_v0, grad_b0, grad_decay?)",
        py::arg("grad_spikes"), py::arg("grad_v_last"), py::arg("grad_b_last"), py::arg("grad_v_seq"),
        py::arg("h_seq"), py::arg("b_seq"), py::arg("x"), py::arg("v0"), py::arg("b0"), py::arg("decay"),
        py::arg("rho"), py::arg("beta"), py::arg("v_threshold"), py::arg("v_reset"), py::arg("hard_reset"),
        py::arg("decay_input"), py::arg("detach_reset"), py::arg("surrogate"), py::arg("alpha"),
        py::arg("grad_decay"), py::arg("strict_threshold") = false);
  m.def("cubalif_forward", &cubalif_forward,
        "CUBALIF multi-step forward -> (spikes, u_last, v_last, vpre_seq?, v_seq?); cu = 1 - du, cv = 1 - dv",
        py::arg("x"), py::arg("u0"), py::arg("v0"), py::arg("cu"), py::arg("cv"), py::arg("v_threshold"),
        py::arg("bias"), py::arg("save"), py::arg("record_v"));
  m.def("cubalif_backward", &cubalif_backward, "CUBALIF multi-step backward -> (grad_x, grad_u0, grad_v0)",
        py::arg("grad_spikes"), py::arg("grad_u_last"), py::arg("grad_v_last"), py::arg("grad_v_seq"),
        py::arg("vpre_seq"), py::arg("cu"), py::arg("cv"), py::arg("v_threshold"), py::arg("detach_reset"),
        py::arg("surrogate"), py::arg("alpha"));
}
