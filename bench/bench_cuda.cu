// dsd_bench_cuda: what the CUDA backend's kernels cost, each next to a reference measured in the
// same binary: a device copy kernel for the memory-bound masked updates, CUB's radix sort for the
// selection that builds masks, cuBLAS GEMM for cuSPARSE's sparse products of pruned FC layers. Times come from CUDA events (manual time).
//
//   dsd_bench_cuda [google-benchmark flags]
//
// bytes_per_second counts each array read or written once (STREAM's convention), masks as n/8.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>
#include <cub/device/device_radix_sort.cuh>

#include <dsd/backend/cuda.cuh>
#include <dsd/dsd.hpp>
#include <memory>
#include <string>
#include <vector>

#include "paper_shapes.hpp"

namespace {

__global__ void fill_random(float* w, std::size_t n, std::uint64_t seed) {
  for (std::size_t i = dsd::cuda::global_thread(); i < n; i += dsd::cuda::global_threads())
    w[i] = static_cast<float>(static_cast<double>(dsd::detail::counter_random(seed, 0, i) >> 11) *
                                  0x1p-53 * 2 - 1);
}

dsd::cuda::DeviceBuffer<float> random_buffer(std::size_t n, std::uint64_t seed) {
  dsd::cuda::DeviceBuffer<float> b(n);
  fill_random<<<dsd::cuda::grid_for(n), dsd::cuda::block_size>>>(b.data(), n, seed);
  DSD_CUDA_CHECK(cudaDeviceSynchronize());
  return b;
}

/// Times `body` with CUDA events on the default stream, one event pair per iteration.
template <class F>
void time_loop(benchmark::State& state, F&& body) {
  cudaEvent_t start, stop;
  DSD_CUDA_CHECK(cudaEventCreate(&start));
  DSD_CUDA_CHECK(cudaEventCreate(&stop));
  body();  // warm-up
  for (auto _ : state) {
    DSD_CUDA_CHECK(cudaEventRecord(start));
    body();
    DSD_CUDA_CHECK(cudaEventRecord(stop));
    DSD_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    DSD_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(ms * 1e-3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

void report(benchmark::State& state, std::size_t n, double bytes_per_item) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n));
  state.SetBytesProcessed(static_cast<std::int64_t>(static_cast<double>(state.iterations()) *
                                                    bytes_per_item * static_cast<double>(n)));
}

// ---------------------------------------------------------------- bandwidth reference

__global__ void copy_kernel(const float4* __restrict__ in, float4* __restrict__ out, std::size_t n4) {
  for (std::size_t i = dsd::cuda::global_thread(); i < n4; i += dsd::cuda::global_threads()) out[i] = in[i];
}

void BM_DeviceCopy(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto a = random_buffer(n, 1);
  dsd::cuda::DeviceBuffer<float> b(n);
  time_loop(state, [&] {
    copy_kernel<<<dsd::cuda::grid_for(n / 4), dsd::cuda::block_size>>>(
        reinterpret_cast<const float4*>(a.data()), reinterpret_cast<float4*>(b.data()), n / 4);
  });
  report(state, n, 8.0);
}

// ---------------------------------------------------------------- masked updates

/// Weight tensors of the given sizes with a 50 % Random-Cut mask and random gradients.
struct LayerSet {
  std::vector<dsd::cuda::DeviceBuffer<float>> w, g;
  std::vector<dsd::cuda::DeviceMasked<float>> layers;
  std::vector<dsd::cuda::device_tensor<const float>> grads;
  std::size_t total = 0;
  explicit LayerSet(const std::vector<std::size_t>& sizes) {
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      w.push_back(random_buffer(sizes[i], 2 * i + 1));
      g.push_back(random_buffer(sizes[i], 2 * i + 2));
      total += sizes[i];
    }
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      layers.emplace_back(dsd::cuda::device_tensor<float>{w[i].data(), sizes[i]}, "l" + std::to_string(i));
      dsd::prune(layers.back(), 0.5, dsd::RandomCut{.seed = i});
      grads.push_back({g[i].data(), sizes[i]});
    }
  }
};

/// ResNet-50's 161 parameter tensors (torchvision order: 53 convolutions, 53 BatchNorm weight and
/// bias pairs, the FC weight and bias): 25.6 M values, most tensors tiny.
std::vector<std::size_t> resnet50_sizes() {
  std::vector<std::size_t> s;
  const auto conv = [&](std::size_t in, std::size_t out, std::size_t k) {
    s.push_back(in * out * k * k);
    s.push_back(out);  // BatchNorm weight
    s.push_back(out);  // BatchNorm bias
  };
  conv(3, 64, 7);
  std::size_t in = 64;
  const std::size_t blocks[] = {3, 4, 6, 3}, widths[] = {64, 128, 256, 512};
  for (int stage = 0; stage < 4; ++stage)
    for (std::size_t b = 0; b < blocks[stage]; ++b) {
      const std::size_t w = widths[stage];
      conv(in, w, 1);
      conv(w, w, 3);
      conv(w, 4 * w, 1);
      if (b == 0) conv(in, 4 * w, 1);  // downsample
      in = 4 * w;
    }
  s.push_back(2048 * 1000);
  s.push_back(1000);
  return s;
}

template <class O>
void masked_step(benchmark::State& state, const std::vector<std::size_t>& sizes, double bytes) {
  LayerSet set(sizes);
  const O opt{};
  time_loop(state, [&] { dsd::cuda::step(opt, set.layers, set.grads); });
  report(state, set.total, bytes);
  state.counters["tensors"] = static_cast<double>(sizes.size());
}

// momentum: w, v read and written, g read, mask n/8; Adam: w, m, v read and written, g read.
constexpr double momentum_bytes = 5 * 4 + 1.0 / 8, adam_bytes = 7 * 4 + 1.0 / 8;

void BM_MaskedMomentum(benchmark::State& state) {
  masked_step<dsd::MomentumSgd>(state, {static_cast<std::size_t>(state.range(0))}, momentum_bytes);
}
void BM_MaskedAdam(benchmark::State& state) {
  masked_step<dsd::Adam>(state, {static_cast<std::size_t>(state.range(0))}, adam_bytes);
}
void BM_MaskedMomentum_ResNet50_161_tensors(benchmark::State& state) {
  masked_step<dsd::MomentumSgd>(state, resnet50_sizes(), momentum_bytes);
}
void BM_MaskedMomentum_ResNet50_one_tensor(benchmark::State& state) {
  std::size_t total = 0;
  for (auto s : resnet50_sizes()) total += s;
  masked_step<dsd::MomentumSgd>(state, {total}, momentum_bytes);
}
void BM_MaskedAdam_ResNet50_161_tensors(benchmark::State& state) {
  masked_step<dsd::Adam>(state, resnet50_sizes(), adam_bytes);
}

/// The paper's networks (paper_shapes.hpp: every weight tensor dsd wraps, in module order): one
/// launch of the masked momentum step over all of them.
void BM_PaperMomentumStep(benchmark::State& state, const dsd_bench::PaperNet& net) {
  masked_step<dsd::MomentumSgd>(state, net.weights(), momentum_bytes);
}

// ---------------------------------------------------------------- selection and masks

template <class Policy>
void prune_half(benchmark::State& state, const Policy& policy) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto w = random_buffer(n, 9);
  dsd::cuda::DeviceMasked<float> layer(dsd::cuda::device_tensor<float>{w.data(), n}, "fc");
  // Pruning zeroes weights; restore them each time so every iteration selects on random data.
  auto original = random_buffer(n, 9);
  time_loop(state, [&] {
    DSD_CUDA_CHECK(cudaMemcpyAsync(w.data(), original.data(), n * 4, cudaMemcpyDeviceToDevice));
    (void)dsd::prune_exactly(layer, n / 2, policy);
  });
  report(state, n, 4.0);
}

/// Keepmax-Cut at 50 % (select + mask build + enforce), including a device-to-device restore of
/// the weights that BM_DeviceCopy's figure lets one subtract.
void BM_KeepmaxPrune(benchmark::State& state) { prune_half(state, dsd::KeepmaxCut{}); }
void BM_RandomCutPrune(benchmark::State& state) { prune_half(state, dsd::RandomCut{.seed = 1}); }

/// The paper's networks: Keepmax-Cut of every wrapped tensor at 50 %, per layer or by one global
/// threshold, with a device-to-device restore of the weights first (as BM_KeepmaxPrune).
void BM_PaperPrune(benchmark::State& state, const dsd_bench::PaperNet& net, bool global) {
  const std::vector<std::size_t> sizes = net.weights();
  LayerSet set(sizes);
  std::vector<dsd::cuda::DeviceBuffer<float>> original;  // LayerSet's weights before its prune
  for (std::size_t i = 0; i < sizes.size(); ++i) original.push_back(random_buffer(sizes[i], 2 * i + 1));
  time_loop(state, [&] {
    for (std::size_t i = 0; i < sizes.size(); ++i)
      DSD_CUDA_CHECK(cudaMemcpyAsync(set.w[i].data(), original[i].data(), sizes[i] * 4, cudaMemcpyDeviceToDevice));
    if (global)
      (void)dsd::prune(set.layers, dsd::GlobalSparsity{.sparsity = 0.5});
    else
      (void)dsd::prune(set.layers, dsd::UniformSparsity{.sparsity = 0.5});
  });
  report(state, set.total, 4.0);
  state.counters["tensors"] = static_cast<double>(sizes.size());
}

/// The selection alone: the k-th smallest magnitude over n floats.
void BM_DeviceSelect(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto w = random_buffer(n, 9);
  dsd::cuda::SelectWorkspace ws;
  const dsd::cuda::Segment seg{w.data(), nullptr, n, 0};
  ws.prepare({&seg, 1}, nullptr);
  time_loop(state, [&] {
    benchmark::DoNotOptimize(dsd::cuda::select(dsd::cuda::detail::MagnitudeKeys<float>{}, ws, n / 2, nullptr));
  });
  report(state, n, 4.0);
}

/// Reference: CUB's radix sort of (|w| key, index) pairs, what a sort-based Keepmax-Cut needs.
void BM_CubRadixSortPairs(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto keys_in = random_buffer(n, 9);
  dsd::cuda::DeviceBuffer<float> keys_out(n);
  dsd::cuda::DeviceBuffer<std::uint32_t> idx_in(n), idx_out(n);
  std::size_t bytes = 0;
  DSD_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, keys_in.data(), keys_out.data(), idx_in.data(),
                                                 idx_out.data(), static_cast<std::int64_t>(n)));
  dsd::cuda::DeviceBuffer<unsigned char> temp(bytes);
  time_loop(state, [&] {
    DSD_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data(), bytes, keys_in.data(), keys_out.data(),
                                                   idx_in.data(), idx_out.data(),
                                                   static_cast<std::int64_t>(n)));
  });
  report(state, n, 4.0);
}

// ---------------------------------------------------------------- sparse products

struct FcShape {
  const char* name;
  std::size_t out, in;
};
// LeNet-300-100's first layer and VGG-16's fc6 / fc7 (outputs x inputs).
constexpr FcShape fc_shapes[] = {{"lenet_fc1", 300, 784}, {"vgg_fc6", 4096, 25088}, {"vgg_fc7", 4096, 4096}};

/// One benchmark case of a pruned FC layer (args: shape, sparsity %, batch): random weights,
/// inputs and output gradients, the layer pruned by Keepmax-Cut unless the sparsity is 0 (then
/// the case times cuBLAS on the dense weights, the reference in the same binary).
struct FcCase {
  const FcShape& shape;
  double sparsity;
  std::size_t batch;
  dsd::cuda::DeviceBuffer<float> w, x, dy, out;
  dsd::cuda::DeviceMasked<float> layer;
  dsd::cuda::CublasHandle cublas;
  dsd::cuda::CusparseHandle cusparse;
  std::unique_ptr<dsd::cuda::SparseLinear<float>> sparse;  ///< null for the cuBLAS reference
  const float one = 1, zero = 0;
  FcCase(benchmark::State& state, std::size_t out_size)
      : shape(fc_shapes[state.range(0)]),
        sparsity(static_cast<double>(state.range(1)) / 100.0),
        batch(static_cast<std::size_t>(state.range(2))),
        w(random_buffer(shape.out * shape.in, 5)),
        x(random_buffer(batch * shape.in, 6)),
        dy(random_buffer(batch * shape.out, 7)),
        out(out_size),
        layer(dsd::cuda::device_tensor<float>{w.data(), shape.out * shape.in, {shape.out, shape.in}},
              shape.name) {
    state.SetLabel(std::string(shape.name) + (sparsity == 0 ? " cublas" : " cusparse"));
    if (sparsity == 0) return;
    dsd::prune(layer, sparsity);
    sparse = std::make_unique<dsd::cuda::SparseLinear<float>>(cusparse, layer);
  }
};

/// Forward product Y = X Wᵀ: cuSPARSE SpMM against cuBLAS GEMM.
void BM_FcForward(benchmark::State& state) {
  FcCase c(state, fc_shapes[state.range(0)].out * static_cast<std::size_t>(state.range(2)));
  const int out = int(c.shape.out), in = int(c.shape.in), batch = int(c.batch);
  time_loop(state, [&] {
    if (c.sparse)
      c.sparse->forward(c.x.data(), c.out.data(), c.batch);
    else
      DSD_CUBLAS_CHECK(cublasSgemm(c.cublas.get(), CUBLAS_OP_T, CUBLAS_OP_N, out, batch, in, &c.one, c.w.data(),
                                   in, c.x.data(), in, &c.zero, c.out.data(), out));
  });
  const double flops = 2.0 * out * double(in) * batch * (1 - c.sparsity);
  state.counters["useful_GFLOP/s"] =
      benchmark::Counter(flops * double(state.iterations()) * 1e-9, benchmark::Counter::kIsRate);
}

/// The weight gradient on the pattern dW = dYᵀ X: cuSPARSE SDDMM (+ scatter) against cuBLAS GEMM.
void BM_FcWeightGrad(benchmark::State& state) {
  FcCase c(state, fc_shapes[state.range(0)].out * fc_shapes[state.range(0)].in);
  const int out = int(c.shape.out), in = int(c.shape.in), batch = int(c.batch);
  time_loop(state, [&] {
    if (c.sparse)
      c.sparse->backward_weights(c.dy.data(), c.x.data(), c.out.data(), c.batch);
    else
      DSD_CUBLAS_CHECK(cublasSgemm(c.cublas.get(), CUBLAS_OP_N, CUBLAS_OP_T, in, out, batch, &c.one, c.x.data(),
                                   in, c.dy.data(), out, &c.zero, c.out.data(), in));
  });
}

void fc_args(benchmark::internal::Benchmark* b) {
  for (long shape : {0, 1, 2})
    for (long batch : {1, 64, 256, 2048})
      for (long sparsity : {0, 50, 70, 90, 95, 99}) {
        if (shape == 1 && batch == 2048) continue;  // 0.8 GB of activations per operand: skip
        b->Args({shape, sparsity, batch});
      }
  b->ArgNames({"shape", "sparsity%", "batch"})->UseManualTime()->Unit(benchmark::kMicrosecond);
}

void sizes(benchmark::internal::Benchmark* b) {
  for (long n : {1l << 20, 1l << 24, 100'000'000l, 1l << 27}) b->Arg(n);
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}
void update_sizes(benchmark::internal::Benchmark* b) {
  for (long n : {1l << 20, 1l << 24, 1l << 26}) b->Arg(n);
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(BM_DeviceCopy)->Apply(update_sizes);
BENCHMARK(BM_MaskedMomentum)->Apply(update_sizes);
BENCHMARK(BM_MaskedAdam)->Apply(update_sizes);
BENCHMARK(BM_MaskedMomentum_ResNet50_161_tensors)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MaskedMomentum_ResNet50_one_tensor)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MaskedAdam_ResNet50_161_tensors)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DeviceSelect)->Apply(sizes);
BENCHMARK(BM_CubRadixSortPairs)->Apply(sizes);
BENCHMARK(BM_KeepmaxPrune)->Apply(sizes);
BENCHMARK(BM_RandomCutPrune)->Apply(sizes);
BENCHMARK(BM_FcForward)->Apply(fc_args);
BENCHMARK(BM_FcWeightGrad)->Apply(fc_args);

int main(int argc, char** argv) {
  if (dsd::cuda::device_count() == 0) {
    std::fprintf(stderr, "dsd_bench_cuda: no CUDA device\n");
    return 77;
  }
  for (const dsd_bench::PaperNet& net : dsd_bench::paper_nets()) {
    const std::string name = net.name;
    benchmark::RegisterBenchmark(("BM_PaperMomentumStep/" + name).c_str(),
                                 [&net](benchmark::State& s) { BM_PaperMomentumStep(s, net); })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
    for (const bool global : {false, true})
      benchmark::RegisterBenchmark(((global ? "BM_PaperPrune/global/" : "BM_PaperPrune/per_layer/") + name).c_str(),
                                   [&net, global](benchmark::State& s) { BM_PaperPrune(s, net, global); })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
