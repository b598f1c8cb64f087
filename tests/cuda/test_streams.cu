// GPU tests of the CUDA backend's ordering: the selection's bucket choice among its own warps, and
// every entry point whose work spans layers, gradients or library handles on different streams,
// here two (or three) streams created with cudaStreamNonBlocking, so that nothing but dsd's own
// events orders them. Where a missing ordering could go unnoticed by luck, the producer's stream
// is kept busy first (dsd_test::late_copy), so the old code reads stale data for certain.
// The "select" suite is what scripts/gpu_check.sh runs under compute-sanitizer's racecheck.
#include <doctest/doctest.h>

#include <cstdint>
#include <dsd/backend/cuda.cuh>
#include <dsd/dsd.hpp>
#include <memory>
#include <string>
#include <vector>

#include "../test_util.hpp"
#include "util.cuh"

namespace {
using dsd_test::DeviceWeights;
using dsd_test::DLayer;
using dsd_test::has_device;
using dsd_test::NonBlockingStream;
using dsd_test::words_of;
}  // namespace

TEST_SUITE_BEGIN("select");

TEST_CASE("choose_bucket picks exactly one bucket whatever order its warps run in" *
          doctest::skip(!has_device)) {
  // Bucket 0 holds 1000 keys, buckets 1-254 ten each, bucket 255 five. The sought rank lies in
  // a bucket of warps 3-7; the rank left within it is below 10, inside bucket 0's range: a warp
  // 0 that read state->rank after the matching thread rewrote it matched bucket 0 as well.
  constexpr unsigned bins = dsd::cuda::detail::bins;
  constexpr std::size_t launches = 4096;
  constexpr unsigned shift = 8;
  std::vector<unsigned long long> counts(bins, 10);
  counts[0] = 1000;
  counts[bins - 1] = 5;
  std::vector<unsigned long long> before(bins, 0);
  for (unsigned b = 1; b < bins; ++b) before[b] = before[b - 1] + counts[b - 1];
  std::vector<unsigned long long> hist;
  std::vector<dsd::cuda::detail::SelectState> init;
  for (std::size_t j = 0; j < launches; ++j) {
    hist.insert(hist.end(), counts.begin(), counts.end());
    const unsigned b = 100 + static_cast<unsigned>(j % 150);
    init.push_back({std::uint64_t{0xab} << 16, std::uint64_t{0xff} << 16, before[b] + j % 10, 7,
                    dsd::cuda::detail::no_index});
  }
  dsd::cuda::DeviceBuffer<unsigned long long> d_hist(hist);
  dsd::cuda::DeviceBuffer<dsd::cuda::detail::SelectState> d_state(init);
  NonBlockingStream s0, s1;
  for (std::size_t j = 0; j < launches; ++j) {
    dsd::cuda::detail::choose_bucket<>
        <<<1, bins, 0, j % 2 ? s1 : s0>>>(d_state.data() + j, shift, d_hist.data() + j * bins);
    DSD_CUDA_CHECK(cudaGetLastError());
  }
  DSD_CUDA_CHECK(cudaStreamSynchronize(s0));
  DSD_CUDA_CHECK(cudaStreamSynchronize(s1));
  const auto state = d_state.download();
  for (std::size_t j = 0; j < launches; ++j) {
    CAPTURE(j);
    const unsigned b = 100 + static_cast<unsigned>(j % 150);
    REQUIRE(state[j].prefix == ((std::uint64_t{0xab} << 16) | (std::uint64_t{b} << shift)));
    REQUIRE(state[j].prefix_mask == ((std::uint64_t{0xff} << 16) | (std::uint64_t{0xff} << shift)));
    REQUIRE(state[j].rank == j % 10);
    REQUIRE(state[j].less == 7 + before[b]);
  }
  for (unsigned long long h : d_hist.download()) REQUIRE(h == 0);  // every histogram cleared
}

TEST_CASE(
    "a collection prune over layers on two non-blocking streams gives every layer the CPU's mask" *
    doctest::skip(!has_device)) {
  // The per-thread workspace serves every layer: layer 0's mask build is still queued on s0
  // when layer 1's selection on s1 rewrites the workspace, unless the second waits for the first.
  NonBlockingStream s0, s1;
  const std::vector<std::size_t> sizes = {3u << 20, (1u << 20) + 77, 2u << 20};
  const cudaStream_t streams[] = {s0, s1, s0};
  for (int round = 0; round < 2; ++round) {
    std::vector<std::vector<float>> w, cpu;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      w.push_back(dsd_test::uniform<float>(sizes[i], 60 + i + 10 * round));
      for (std::size_t k = 0; k < w.back().size(); k += 9) w.back()[k] = 0.25f;  // ties
    }
    cpu = w;
    const auto check = [&](const auto& thresholds, const auto& policy) {
      std::vector<std::unique_ptr<DeviceWeights<float>>> dev;
      for (std::size_t i = 0; i < sizes.size(); ++i)
        dev.push_back(std::make_unique<DeviceWeights<float>>(w[i], "l" + std::to_string(i),
                                                             dsd::Shape{}, streams[i]));
      std::vector<float> h0 = w[0], h1 = w[1], h2 = w[2];
      dsd::Masked m0(h0, "l0"), m1(h1, "l1"), m2(h2, "l2");
      const auto hs = dsd::prune(dsd::layers(m0, m1, m2), thresholds, policy);
      const auto ds =
          dsd::prune(dsd::layers(dev[0]->layer, dev[1]->layer, dev[2]->layer), thresholds, policy);
      const dsd::Masked<std::vector<float>>* host[] = {&m0, &m1, &m2};
      const std::vector<float>* host_w[] = {&h0, &h1, &h2};
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        CAPTURE(i);
        CHECK(ds[i].kept == hs[i].kept);
        CHECK(words_of(dev[i]->layer.mask().to_host()) == words_of(host[i]->mask()));
        CHECK(dev[i]->buf.download(streams[i]) == *host_w[i]);
      }
    };
    CAPTURE(round);
    check(dsd::UniformSparsity{.sparsity = 0.6}, dsd::KeepmaxCut{});
    check(dsd::UniformSparsity{.sparsity = 0.4}, dsd::RandomCut{.seed = 5});
    check(dsd::GlobalSparsity{.sparsity = 0.5}, dsd::KeepmaxCut{});
  }
}

TEST_CASE("GlobalSparsity's counts see what each layer's own non-blocking stream wrote" *
          doctest::skip(!has_device)) {
  // The global selection runs on layer 0's stream; layer 1's new weights are still being
  // written on s1 when it is queued.
  NonBlockingStream s0, s1;
  const std::size_t n0 = 200000, n1 = 300000;
  const auto w0 = dsd_test::uniform<float>(n0, 71), old1 = dsd_test::uniform<float>(n1, 72),
             new1 = dsd_test::uniform<float>(n1, 73, 4.0);  // larger: layer 1 keeps more
  DeviceWeights<float> d0(w0, "a", {}, s0), d1(old1, "b", {}, s1);
  const dsd::cuda::DeviceBuffer<float> fresh(new1);
  const dsd::GlobalSparsity g{.sparsity = 0.5};
  std::vector<float> h0 = w0, h1 = new1, stale = old1;
  dsd::Masked m0(h0, "a"), m1(h1, "b"), ms(stale, "b");
  auto hl = dsd::layers(m0, m1), hstale = dsd::layers(m0, ms);
  const auto want = g.prune_counts(hl);
  REQUIRE(want != g.prune_counts(hstale));  // stale weights give other counts
  auto dl = dsd::layers(d0.layer, d1.layer);
  dsd_test::late_copy(d1.buf.data(), fresh.data(), n1, s1);
  CHECK(g.prune_counts(dl) == want);
  dsd_test::late_copy(d1.buf.data(), fresh.data(), n1, s1);  // again, for the prune itself
  const auto ds = dsd::prune(dl, g);
  const auto hs = dsd::prune(hl, g);
  CHECK(ds[0].kept == hs[0].kept);
  CHECK(ds[1].kept == hs[1].kept);
  CHECK(words_of(d1.layer.mask().to_host()) == words_of(m1.mask()));
  CHECK(d1.buf.download(s1) == h1);
}

TEST_SUITE_END();

TEST_CASE(
    "cuda::step updates each layer on its own stream, after its weights' and its gradient's "
    "streams" *
    doctest::skip(!has_device)) {
  // Layer 0 lives on s0, layer 1 on s1; layer 0's gradient comes from s1 and layer 1's from s0.
  // Layer 1's weights and both gradients are still being written when the step is queued, and
  // both gradients are overwritten with NaN on their own streams right after it returns.
  NonBlockingStream s0, s1;
  const std::size_t n0 = 100003, n1 = 250000;
  const auto w0 = dsd_test::uniform<float>(n0, 81), old1 = dsd_test::uniform<float>(n1, 82),
             new1 = dsd_test::uniform<float>(n1, 83), g0 = dsd_test::uniform<float>(n0, 84),
             g1 = dsd_test::uniform<float>(n1, 85);
  DeviceWeights<float> d0(w0, "a", {}, s0), d1(old1, "b", {}, s1);
  const dsd::cuda::DeviceBuffer<float> fresh1(new1), src_g0(g0), src_g1(g1);
  dsd::cuda::DeviceBuffer<float> dg0(n0), dg1(n1);
  const dsd::MomentumSgd opt{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3};
  std::vector<float> h0 = w0, h1 = new1;
  dsd::Masked m0(h0, "a"), m1(h1, "b");
  for (int s = 0; s < 2; ++s) {
    CAPTURE(s);
    opt.step(m0, g0);
    opt.step(m1, g1);
    if (s == 0) dsd_test::late_copy(d1.buf.data(), fresh1.data(), n1, s1);
    dsd_test::late_copy(dg0.data(), src_g0.data(), n0, s1);
    dsd_test::late_copy(dg1.data(), src_g1.data(), n1, s0);
    const std::vector<dsd::cuda::device_tensor<const float>> grads = {{dg0.data(), n0, {}, s1},
                                                                      {dg1.data(), n1, {}, s0}};
    dsd::cuda::step(opt, dsd::layers(d0.layer, d1.layer), grads);
    DSD_CUDA_CHECK(cudaMemsetAsync(dg0.data(), 0xff, n0 * sizeof(float), s1));  // NaN
    DSD_CUDA_CHECK(cudaMemsetAsync(dg1.data(), 0xff, n1 * sizeof(float), s0));
  }
  const auto a = d0.buf.download(s0), b = d1.buf.download(s1);
  CHECK(d0.layer.state().step == 2);
  CHECK(d1.layer.state().step == 2);
  for (std::size_t i = 0; i < n0; ++i) REQUIRE(a[i] == doctest::Approx(h0[i]).epsilon(1e-5));
  for (std::size_t i = 0; i < n1; ++i) REQUIRE(b[i] == doctest::Approx(h1[i]).epsilon(1e-5));
  const auto v1 = d1.layer.state().first.download(s1);
  for (std::size_t i = 0; i < n1; ++i)
    REQUIRE(v1[i] == doctest::Approx(m1.state().first[i]).epsilon(1e-5));
}

TEST_CASE(
    "SparseLinear queues cuSPARSE on the layer's stream and gives the handle its own stream back" *
    doctest::skip(!has_device)) {
  // The handle is bound to s0, the layer lives on s1. refresh() gathers the kept values on s1
  // (behind a pending weight update there) and transposes them with cuSPARSE: on s0 that read
  // the values before they were gathered.
  NonBlockingStream s0, s1;
  const std::size_t out = 300, in = 784, batch = 64;
  const auto w = dsd_test::uniform<float>(out * in, 91);
  const auto x = dsd_test::uniform<float>(batch * in, 92),
             dy = dsd_test::uniform<float>(batch * out, 93);
  DeviceWeights<float> d(w, "fc", dsd::Shape{out, in}, s1);
  dsd::prune(d.layer, 0.7);
  const dsd::BitMask m = d.layer.mask().to_host();
  auto w2 = dsd_test::uniform<float>(out * in, 94);  // the weights after an optimizer step
  for (std::size_t i = 0; i < w2.size(); ++i)
    if (!m.test(i)) w2[i] = 0.0f;
  const dsd::cuda::DeviceBuffer<float> fresh(w2);
  dsd::cuda::CusparseHandle handle(s0);
  const auto handle_stream = [&] {
    cudaStream_t s = nullptr;
    DSD_CUSPARSE_CHECK(cusparseGetStream(handle.get(), &s));
    return s;
  };
  dsd::cuda::SparseLinear<float> sp(handle, d.layer);
  CHECK(handle_stream() == static_cast<cudaStream_t>(s0));
  REQUIRE(sp.nnz() == m.count());
  dsd::cuda::DeviceBuffer<float> dx_in(x), ddy(dy), y(batch * out), dx(batch * in),
      dw(std::vector<float>(out * in, -7.0f));
  dsd_test::late_copy(d.buf.data(), fresh.data(), out * in, s1);
  sp.refresh();
  sp.forward(dx_in.data(), y.data(), batch);
  sp.backward_data(ddy.data(), dx.data(), batch);
  sp.backward_weights(ddy.data(), dx_in.data(), dw.data(), batch);
  CHECK(handle_stream() == static_cast<cudaStream_t>(s0));
  const auto hy = y.download(s1), hdx = dx.download(s1), hdw = dw.download(s1);
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t o = 0; o < out; ++o) {
      double ref = 0;
      for (std::size_t i = 0; i < in; ++i) ref += double(x[b * in + i]) * w2[o * in + i];
      REQUIRE(hy[b * out + o] == doctest::Approx(ref).epsilon(1e-4));
    }
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t i = 0; i < in; ++i) {
      double ref = 0;
      for (std::size_t o = 0; o < out; ++o) ref += double(dy[b * out + o]) * w2[o * in + i];
      REQUIRE(hdx[b * in + i] == doctest::Approx(ref).epsilon(1e-4));
    }
  for (std::size_t o = 0; o < out; ++o)
    for (std::size_t i = 0; i < in; ++i) {
      if (!m.test(o * in + i)) {
        REQUIRE(hdw[o * in + i] == -7.0f);
        continue;
      }
      double ref = 0;
      for (std::size_t b = 0; b < batch; ++b) ref += double(dy[b * out + o]) * x[b * in + i];
      REQUIRE(hdw[o * in + i] == doctest::Approx(ref).epsilon(1e-4));
    }
}

TEST_CASE(
    "time_step_products times on the layer's stream and gives the cuBLAS handle its stream back" *
    doctest::skip(!has_device)) {
  NonBlockingStream s0, s1;
  DeviceWeights<float> d(dsd_test::uniform<float>(300 * 784, 95), "fc", dsd::Shape{300, 784}, s1);
  dsd::prune(d.layer, 0.9);
  dsd::cuda::CusparseHandle cusparse(s0);
  dsd::cuda::CublasHandle cublas(s0);
  dsd::cuda::SparseLinear<float> sp(cusparse, d.layer);
  const auto t = dsd::cuda::time_step_products(sp, cublas, d.layer, 64);
  CHECK(t.sparse_ms > 0);
  CHECK(t.dense_ms > 0);
  cudaStream_t s = nullptr;
  DSD_CUBLAS_CHECK(cublasGetStream(cublas.get(), &s));
  CHECK(s == static_cast<cudaStream_t>(s0));
  // A refused call releases its events and leaves the handle as it was.
  CHECK_THROWS_AS((void)dsd::cuda::time_step_products(sp, cublas, d.layer, 0), dsd::error);
  DSD_CUBLAS_CHECK(cublasGetStream(cublas.get(), &s));
  CHECK(s == static_cast<cudaStream_t>(s0));
}
