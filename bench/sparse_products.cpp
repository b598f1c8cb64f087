// Y = W X for pruned layers: our CSR kernel against oneDNN matmul and Eigen on the dense W.
// Arguments: shape index, batch, (sparsity %,) threads.
#include <dnnl.hpp>

#include <Eigen/Core>
#include <dsd/backend/cpu/csr.hpp>
#include <vector>

#include "common.hpp"

namespace dsd_bench {
namespace {

// ---------------------------------------------------------------- sparse x dense products
struct Shape2 {
  const char* name;
  std::size_t rows, cols;
};
const Shape2 shapes[] = {{"lenet_fc1", 300, 784},
                         {"lenet_fc2", 100, 300},
                         {"vgg_fc7", 4096, 4096},
                         {"vgg_fc6", 4096, 25088}};

void spmm_csr(benchmark::State& state) {
  const Shape2 s = shapes[state.range(0)];
  const auto batch = static_cast<std::size_t>(state.range(1));
  const double sparsity = static_cast<double>(state.range(2)) / 100.0;
  set_threads(state, 3);
  auto w = random_floats(s.rows * s.cols, 7);
  dsd::Masked layer(dsd::raw_tensor<float>{w.data(), w.size(), {s.rows, s.cols}}, s.name);
  dsd::prune(layer, sparsity);
  const auto a = dsd::to_csr(layer);
  const auto x = random_floats(s.cols * batch, 8);
  std::vector<float> y(s.rows * batch);
  for (auto _ : state) {
    dsd::cpu::csr_matmul(a, x, batch, y);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["sparsity"] = sparsity;
  state.counters["flops"] = benchmark::Counter(2.0 * double(a.nnz()) * double(batch),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void spmm_dense_onednn(benchmark::State& state) {
  const Shape2 s = shapes[state.range(0)];
  const auto batch = static_cast<dnnl::memory::dim>(state.range(1));
  set_threads(state, 2);
  using tag = dnnl::memory::format_tag;
  const auto M = static_cast<dnnl::memory::dim>(s.rows), K = static_cast<dnnl::memory::dim>(s.cols);
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  auto w = random_floats(s.rows * s.cols, 7);
  auto x = random_floats(s.cols * static_cast<std::size_t>(batch), 8);
  std::vector<float> y(s.rows * static_cast<std::size_t>(batch));
  const dnnl::memory::desc a_md({M, K}, dnnl::memory::data_type::f32, tag::ab),
      b_md({K, batch}, dnnl::memory::data_type::f32, tag::ab),
      c_md({M, batch}, dnnl::memory::data_type::f32, tag::ab);
  dnnl::matmul mm(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), eng));
  dnnl::memory am(a_md, eng, w.data()), bm(b_md, eng, x.data()), cm(c_md, eng, y.data());
  for (auto _ : state) {
    mm.execute(strm, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    strm.wait();
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["flops"] = benchmark::Counter(2.0 * double(M * K * batch),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void spmm_dense_eigen(benchmark::State& state) {
  const Shape2 s = shapes[state.range(0)];
  const auto batch = static_cast<Eigen::Index>(state.range(1));
  const int t = set_threads(state, 2);
  Eigen::setNbThreads(t);
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  auto w = random_floats(s.rows * s.cols, 7);
  auto x = random_floats(s.cols * static_cast<std::size_t>(batch), 8);
  std::vector<float> y(s.rows * static_cast<std::size_t>(batch));
  const Eigen::Map<const RowMajor> A(w.data(), Eigen::Index(s.rows), Eigen::Index(s.cols)),
      X(x.data(), Eigen::Index(s.cols), batch);
  Eigen::Map<RowMajor> Y(y.data(), Eigen::Index(s.rows), batch);
  for (auto _ : state) {
    Y.noalias() = A * X;
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["flops"] = benchmark::Counter(2.0 * double(s.rows * s.cols) * double(batch),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

void register_sparse_products() {
  for (std::int64_t s = 0; s < 4; ++s)
    for (std::int64_t batch : {1, 64})
      for (int t : g_threads) {
        benchmark::RegisterBenchmark("spmm/dense_onednn", spmm_dense_onednn)
            ->Args({s, batch, t})
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark("spmm/dense_eigen", spmm_dense_eigen)
            ->Args({s, batch, t})
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
        for (std::int64_t sp : {50, 70, 89, 95, 99})
          benchmark::RegisterBenchmark("spmm/csr", spmm_csr)
              ->Args({s, batch, sp, t})
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
      }
}

}  // namespace dsd_bench
