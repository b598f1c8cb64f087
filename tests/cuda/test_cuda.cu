// GPU backend tests: every device result against the CPU implementation on the same data.
// Without a usable device the device cases are skipped, the "no device" error is checked, and the
// binary exits 77 so ctest reports the test as skipped.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <dsd/backend/cuda.cuh>
#include <dsd/dsd.hpp>
#include <dsd/io/checkpoint.hpp>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../test_util.hpp"
#include "util.cuh"

namespace {
using dsd_test::DeviceWeights;
using dsd_test::DLayer;
using dsd_test::has_device;
using dsd_test::words_of;

/// Prunes the same weights on the CPU and the GPU and checks masks, thresholds and weights agree.
template <class S, class Policy>
void check_same_prune(std::vector<S> w, std::size_t k, const Policy& policy, dsd::Shape shape = {}) {
  CAPTURE(w.size());
  CAPTURE(k);
  std::vector<S> cpu = w;
  dsd::Masked<std::vector<S>> host(cpu, "fc", shape.size() == w.size() ? shape : dsd::Shape{1, w.size()});
  const auto hs = dsd::prune_exactly(host, k, policy);
  DeviceWeights<S> dev(w, "fc", shape);
  const auto ds = dsd::prune_exactly(dev.layer, k, policy);
  CHECK(ds.kept == hs.kept);
  CHECK(ds.threshold == hs.threshold);
  CHECK(words_of(dev.layer.mask().to_host()) == words_of(host.mask()));
  CHECK(dev.buf.download() == cpu);
}
}  // namespace

TEST_CASE("GPU calls without a GPU fail with errc::no_device" * doctest::skip(has_device)) {
  try {
    dsd::cuda::require_device();
    FAIL("expected dsd::error");
  } catch (const dsd::error& e) {
    CHECK(e.code() == dsd::errc::no_device);
    CHECK(std::string(e.what()).find("dsd: no usable CUDA device") == 0);
  }
  CHECK_THROWS_AS(dsd::cuda::DeviceBuffer<float>(16), dsd::error);
}

TEST_CASE("device Keepmax-Cut equals the CPU mask, ties included" * doctest::skip(!has_device) *
          doctest::test_suite("select")) {
  for (std::size_t n : {std::size_t{1}, std::size_t{63}, std::size_t{1000}, std::size_t{2048 * 3 + 5},
                        (std::size_t{1} << 20) + 13}) {
    auto w = dsd_test::uniform<float>(n, 3);
    for (std::size_t i = 0; i < n; i += 7) w[i] = 0.25f;  // many exact ties
    for (std::size_t i = 3; i < n; i += 11) w[i] = -0.25f;  // ties of the other sign
    for (std::size_t k : {std::size_t{0}, n / 3, n * 3 / 5, n - 1, n}) check_same_prune(w, k, dsd::KeepmaxCut{});
  }
  check_same_prune(std::vector<float>(5000, 1.5f), 1234, dsd::KeepmaxCut{});  // every weight ties
  check_same_prune(dsd_test::uniform<double>(100003, 4), 70001, dsd::KeepmaxCut{});
  auto zeros = dsd_test::uniform<float>(4097, 5);
  for (std::size_t i = 0; i < zeros.size(); i += 2) zeros[i] = (i % 4) ? 0.0f : -0.0f;
  check_same_prune(zeros, 3000, dsd::KeepmaxCut{});
}

TEST_CASE("device Random-Cut equals the CPU mask; N:M and user policies through the host" *
          doctest::skip(!has_device) * doctest::test_suite("select")) {
  const auto w = dsd_test::uniform<float>(100000, 6);
  for (std::uint64_t seed : {0ull, 7ull}) check_same_prune(w, 50000, dsd::RandomCut{.seed = seed});
  check_same_prune(dsd_test::uniform<double>(3000, 7), 1000, dsd::RandomCut{.seed = 3});
  check_same_prune(w, 50000, dsd::NMCut<2, 4>{}, dsd::Shape{250, 400});
}

TEST_CASE("NaN and Inf weights give the CPU's error on the device" * doctest::skip(!has_device) *
          doctest::test_suite("select")) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
    auto w = dsd_test::uniform<float>(10000, 8);
    w[4321] = bad;
    w[9000] = bad;
    std::vector<float> cpu = w;
    dsd::Masked<std::vector<float>> host(cpu, "conv1");
    std::string cpu_msg;
    try {
      dsd::prune(host, 0.5);
    } catch (const dsd::error& e) {
      cpu_msg = e.what();
    }
    REQUIRE(!cpu_msg.empty());
    for (std::size_t k : {std::size_t{0}, std::size_t{5000}}) {
      DeviceWeights<float> dev(w, "conv1");
      try {
        (void)dsd::prune_exactly(dev.layer, k, dsd::KeepmaxCut{});
        FAIL("expected dsd::error");
      } catch (const dsd::error& e) {
        CHECK(e.code() == dsd::errc::non_finite);
        CHECK(std::string(e.what()) == cpu_msg);
      }
      CHECK_THROWS_WITH_AS((void)dsd::prune_exactly(dev.layer, k, dsd::RandomCut{}), cpu_msg.c_str(),
                           dsd::error);
      CHECK(dev.layer.mask().count() == w.size());  // nothing was pruned
    }
  }
}

TEST_CASE("GlobalSparsity over device layers: one device select, the CPU's counts and masks" *
          doctest::skip(!has_device) * doctest::test_suite("select")) {
  std::vector<std::vector<float>> w = {dsd_test::uniform<float>(30000, 1, 0.5),
                                       dsd_test::uniform<float>(5000, 2, 2.0),
                                       dsd_test::uniform<float>(70001, 3, 1.0)};
  for (auto& v : w)
    for (std::size_t i = 0; i < v.size(); i += 5) v[i] = 0.125f;  // ties across layers
  std::vector<std::vector<float>> cpu = w;
  dsd::Masked h0(cpu[0], "a"), h1(cpu[1], "b"), h2(cpu[2], "c");
  DeviceWeights<float> d0(w[0], "a"), d1(w[1], "b"), d2(w[2], "c");
  for (const dsd::GlobalSparsity& g : {dsd::GlobalSparsity{.sparsity = 0.6},
                                      dsd::GlobalSparsity{.sparsity = 0.3, .exclude = {"b"}}}) {
    auto hl = dsd::layers(h0, h1, h2);
    auto dl = dsd::layers(d0.layer, d1.layer, d2.layer);
    CHECK(g.prune_counts(dl) == g.prune_counts(hl));
    const auto hs = dsd::prune(hl, g);
    const auto ds = dsd::prune(dl, g);
    for (std::size_t i = 0; i < 3; ++i) CHECK(ds[i].kept == hs[i].kept);
    CHECK(words_of(d0.layer.mask().to_host()) == words_of(h0.mask()));
    CHECK(words_of(d2.layer.mask().to_host()) == words_of(h2.mask()));
    CHECK(d1.buf.download() == cpu[1]);
  }
}

TEST_CASE("selection past 2^31 elements" * doctest::skip(!has_device)) {
  // w[i] = i % 4096 as float: the k-th smallest and the ties it splits are known in closed form.
  const std::size_t n = (std::size_t{1} << 31) + 5000, period = 4096;
  std::vector<float> pattern(period);
  for (std::size_t v = 0; v < period; ++v) pattern[v] = static_cast<float>(v);
  dsd::cuda::DeviceBuffer<float> buf(n);
  DSD_CUDA_CHECK(cudaMemcpy(buf.data(), pattern.data(), period * sizeof(float), cudaMemcpyHostToDevice));
  for (std::size_t filled = period; filled < n; filled *= 2)  // the periodic prefix doubles
    DSD_CUDA_CHECK(cudaMemcpy(buf.data() + filled, buf.data(), std::min(filled, n - filled) * sizeof(float),
                              cudaMemcpyDeviceToDevice));
  DLayer<float> layer(dsd::cuda::device_tensor<float>{buf.data(), n}, "huge");
  const std::size_t k = n / 2;
  std::size_t below = 0, t = 0;
  for (;; ++t) {  // count of value t: n / period, plus one if t < n % period
    const std::size_t c = n / period + (t < n % period ? 1 : 0);
    if (below + c >= k) break;
    below += c;
  }
  const auto stats = dsd::prune_exactly(layer, k);
  CHECK(stats.kept == n - k);
  CHECK(stats.threshold == static_cast<double>(t));
  // The (k - below) ties pruned are the first occurrences of t: occurrence j sits at t + j * period.
  const std::size_t last_pruned = t + (k - below - 1) * period, first_kept = last_pruned + period;
  const dsd::BitMask m = layer.mask().to_host();
  CHECK(!m.test(last_pruned));
  CHECK(m.test(first_kept));
  CHECK(!m.test(t - 1));
  CHECK(m.test(t + 1));
}

template <class O>
void check_same_steps(const O& opt, double rel) {
  CAPTURE(O::name);
  const std::vector<std::size_t> sizes = {100003, 4096, 7, 250000};
  std::vector<std::vector<float>> w, g, cpu;
  std::vector<dsd::Masked<std::vector<float>>> host;
  std::vector<std::unique_ptr<DeviceWeights<float>>> dev;
  std::vector<dsd::cuda::DeviceBuffer<float>> dg;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    w.push_back(dsd_test::uniform<float>(sizes[i], 10 + i));
    g.push_back(dsd_test::uniform<float>(sizes[i], 20 + i));
    dg.emplace_back(g.back());
  }
  cpu = w;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    host.emplace_back(cpu[i], "l" + std::to_string(i));
    dev.push_back(std::make_unique<DeviceWeights<float>>(w[i], "l" + std::to_string(i)));
  }
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    dsd::prune(host[i], 0.5, dsd::RandomCut{.seed = i});
    dsd::prune(dev[i]->layer, 0.5, dsd::RandomCut{.seed = i});
  }
  // Layer 0 takes two extra steps first: per-layer step counts must differ (Adam's bias terms).
  for (int s = 0; s < 2; ++s) {
    opt.step(host[0], g[0]);
    dsd::cuda::step(opt, dev[0]->layer, dsd::cuda::device_tensor<const float>{dg[0].data(), sizes[0]});
  }
  std::vector<DLayer<float>*> ptrs;
  for (int s = 0; s < 3; ++s) {
    for (std::size_t i = 0; i < sizes.size(); ++i) opt.step(host[i], g[i]);
    std::vector<dsd::cuda::device_tensor<const float>> grads;
    for (std::size_t i = 0; i < sizes.size(); ++i) grads.push_back({dg[i].data(), sizes[i]});
    dsd::cuda::step(opt, dsd::layers(dev[0]->layer, dev[1]->layer, dev[2]->layer, dev[3]->layer), grads);
  }
  for (std::size_t l = 0; l < sizes.size(); ++l) {
    CHECK(dev[l]->layer.state().step == host[l].state().step);
    const auto gw = dev[l]->buf.download();
    const auto gs = dev[l]->layer.state().first.download();
    for (std::size_t i = 0; i < sizes[l]; ++i) {
      if (!host[l].mask().test(i)) {
        REQUIRE(gw[i] == 0.0f);
        if (!gs.empty()) REQUIRE(gs[i] == 0.0f);
        continue;
      }
      REQUIRE(gw[i] == doctest::Approx(cpu[l][i]).epsilon(rel));
      if (!gs.empty()) REQUIRE(gs[i] == doctest::Approx(host[l].state().first[i]).epsilon(rel));
    }
  }
}

TEST_CASE("one-launch masked optimizers equal the CPU's, pruned weights and state exactly zero" *
          doctest::skip(!has_device)) {
  check_same_steps(dsd::Sgd{.lr = 0.1, .weight_decay = 1e-3}, 1e-6);
  check_same_steps(dsd::MomentumSgd{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3}, 1e-5);
  check_same_steps(dsd::Nesterov{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3}, 1e-5);
  check_same_steps(dsd::Adam{.lr = 0.01, .weight_decay = 1e-3}, 1e-4);
  check_same_steps(dsd::AdamW{.lr = 0.01, .weight_decay = 0.1}, 1e-4);
}

TEST_CASE("device optimizer inputs are checked" * doctest::skip(!has_device)) {
  DeviceWeights<float> d(dsd_test::uniform<float>(100, 1), "fc");
  dsd::cuda::DeviceBuffer<float> g(99);
  CHECK_THROWS_WITH_AS(dsd::cuda::step(dsd::Sgd{}, d.layer, dsd::cuda::device_tensor<float>{g.data(), 99}),
                       "dsd: sgd: gradient of 99 elements for layer \"fc\" of 100 weights", dsd::error);
  CHECK_THROWS_AS(dsd::cuda::step(dsd::MomentumSgd{.momentum = 1.0}, d.layer,
                                  dsd::cuda::device_tensor<float>{g.data(), 100}),
                  dsd::error);
  std::vector<float> host(10);
  CHECK_THROWS_AS(DLayer<float>(dsd::cuda::device_tensor<float>{host.data(), 10}, "h"), dsd::error);
}

TEST_CASE(
    "cuda::step is all or nothing: a bad gradient of layer 130 changes no layer and launches "
    "nothing" *
    doctest::skip(!has_device)) {
  // More layers than one launch takes (128): before, the first launch had run, and every earlier
  // layer's state and step count had changed, when the last gradient was found wrong.
  const std::size_t n_layers = dsd::cuda::max_tensors_per_launch + 2, n = 300;
  std::vector<std::vector<float>> w;
  std::vector<dsd::cuda::DeviceBuffer<float>> wb, g;
  for (std::size_t i = 0; i < n_layers; ++i) {
    w.push_back(dsd_test::uniform<float>(n, 100 + i));
    wb.emplace_back(w.back());
    g.emplace_back(dsd_test::uniform<float>(n, 300 + i));
  }
  std::vector<DLayer<float>> owned;
  for (std::size_t i = 0; i < n_layers; ++i)
    owned.emplace_back(dsd::cuda::device_tensor<float>{wb[i].data(), n}, "l" + std::to_string(i));
  const auto grads_with_last = [&](dsd::cuda::device_tensor<const float> last) {
    std::vector<dsd::cuda::device_tensor<const float>> grads;
    for (std::size_t i = 0; i + 1 < n_layers; ++i) grads.push_back({g[i].data(), n});
    grads.push_back(last);
    return grads;
  };
  const auto unchanged = [&](std::int64_t steps, const std::vector<std::vector<float>>& weights,
                             const std::vector<std::vector<float>>& first) {
    for (std::size_t i = 0; i < n_layers; ++i) {
      CAPTURE(i);
      REQUIRE(owned[i].state().step == steps);
      REQUIRE(wb[i].download() == weights[i]);
      if (first.empty())
        REQUIRE(owned[i].state().first.empty());
      else
        REQUIRE(owned[i].state().first.download() == first[i]);
    }
  };
  const std::vector<float> host(n, 1.0f);
  dsd::cuda::DeviceBuffer<float> short_grad(n - 1);
  const dsd::Adam adam{.lr = 0.01};
  // Before any step: no state to allocate half-way either.
  CHECK_THROWS_WITH_AS(dsd::cuda::step(adam, owned, grads_with_last({short_grad.data(), n - 1})),
                       "dsd: adam: gradient of 299 elements for layer \"l129\" of 300 weights",
                       dsd::error);
  unchanged(0, w, {});
  try {
    dsd::cuda::step(adam, owned, grads_with_last({host.data(), n}));
    FAIL("expected dsd::error");
  } catch (const dsd::error& e) {
    CHECK(e.code() == dsd::errc::invalid_argument);
    CHECK(std::string(e.what()) ==
          "dsd: adam: the gradient for layer \"l129\" is in host memory; pass device memory");
  }
  unchanged(0, w, {});
  CHECK_THROWS_WITH_AS(dsd::cuda::step(adam, owned, grads_with_last({nullptr, n})),
                       "dsd: adam: the gradient for layer \"l129\" is a null pointer", dsd::error);
  unchanged(0, w, {});
  // After a good step: step counts, moments and weights stay as that step left them.
  dsd::cuda::step(adam, owned, grads_with_last({g.back().data(), n}));
  std::vector<std::vector<float>> w1, m1;
  for (std::size_t i = 0; i < n_layers; ++i) {
    w1.push_back(wb[i].download());
    m1.push_back(owned[i].state().first.download());
  }
  REQUIRE(w1[0] != w[0]);
  CHECK_THROWS_AS(dsd::cuda::step(adam, owned, grads_with_last({host.data(), n})), dsd::error);
  CHECK_THROWS_AS(dsd::cuda::step(adam, owned, grads_with_last({short_grad.data(), n - 1})),
                  dsd::error);
  unchanged(1, w1, m1);
}

TEST_CASE("run() drives device layers: prune, sparse steps, re-dense from zero" * doctest::skip(!has_device)) {
  auto w0 = dsd_test::uniform<float>(50000, 31), w1 = dsd_test::uniform<float>(20000, 32);
  DeviceWeights<float> a(w0, "a"), b(w1, "b");
  dsd::cuda::DeviceBuffer<float> ga(dsd_test::uniform<float>(50000, 33)), gb(dsd_test::uniform<float>(20000, 34));
  const std::vector<dsd::cuda::device_tensor<const float>> grads = {{ga.data(), 50000}, {gb.data(), 20000}};
  dsd::MomentumSgd opt{.lr = 0.01, .momentum = 0.9};
  std::vector<double> lrs;
  std::vector<std::size_t> kept;
  dsd::Callbacks cb;
  cb.set_lr = dsd::lr_of(opt);
  cb.train_epoch = [&](const dsd::EpochContext& ctx) {
    lrs.push_back(opt.lr);
    CHECK(opt.lr == ctx.lr);
    dsd::cuda::step(opt, dsd::layers(a.layer, b.layer), grads);
    kept.push_back(a.layer.mask().count() + b.layer.mask().count());
    return 0.0;
  };
  cb.evaluate = [] { return 0.5; };
  const dsd::Schedule sched{.dense_epochs = 1, .sparse_epochs = 2, .redense_epochs = 1, .lr = 0.1};
  const auto report = dsd::run(dsd::layers(a.layer, b.layer), sched, dsd::UniformSparsity{0.7}, cb);
  REQUIRE(report.phases.size() == 3);
  CHECK(kept == std::vector<std::size_t>{70000, 21000, 21000, 70000});
  CHECK(lrs.back() == doctest::Approx(0.01));
  CHECK(report.phases[1].layers[0].changed == 35000);
  // After re-dense the formerly pruned weights moved from exactly zero by one step.
  const auto after = a.buf.download();
  CHECK(a.layer.mask().count() == 50000);
  std::size_t moved = 0;
  for (float x : after) moved += x != 0.0f;
  CHECK(moved == 50000);
}

TEST_CASE("guide: device layers pruned globally, stepped in one launch, re-densed" *
          doctest::skip(!has_device)) {
  dsd::cuda::DeviceBuffer<float> b_w1(dsd_test::uniform<float>(300 * 784, 41)),
      b_w2(dsd_test::uniform<float>(100 * 300, 42)), b_g1(dsd_test::uniform<float>(300 * 784, 43)),
      b_g2(dsd_test::uniform<float>(100 * 300, 44));
  float *d_w1 = b_w1.data(), *d_w2 = b_w2.data(), *d_g1 = b_g1.data(), *d_g2 = b_g2.data();
  const cudaStream_t stream = nullptr;
  const dsd::cuda::device_tensor<float> w2{d_w2, 100 * 300, {100, 300}, stream};
  // example-begin guide-cuda
  dsd::cuda::device_tensor<float> w1{d_w1, 300 * 784, {300, 784}, stream};  // a view, no copy
  dsd::cuda::DeviceMasked<float> fc1(w1, "fc1"), fc2(w2, "fc2");          // = dsd::Masked<device_tensor<float>>
  auto layers = dsd::layers(fc1, fc2);

  dsd::prune(layers, dsd::GlobalSparsity{.sparsity = 0.8});  // device select, CPU-identical masks
  dsd::MomentumSgd opt{.lr = 0.05, .momentum = 0.9};          // the CPU struct
  std::vector<dsd::cuda::device_tensor<const float>> grads = {{d_g1, 300 * 784}, {d_g2, 100 * 300}};
  dsd::cuda::step(opt, layers, grads);                        // every layer in one launch
  dsd::redense(layers);                                       // pruned weights restart at zero
  // example-end guide-cuda
  CHECK(fc1.mask().count() == 300 * 784);
  CHECK(fc2.mask().count() == 100 * 300);
  std::size_t zeros = 0;  // the pruned 80 % restart at exactly zero; the step moved no pruned one
  for (const auto& b : {&b_w1, &b_w2})
    for (float x : b->download()) zeros += x == 0.0f;
  CHECK(zeros == 212160);  // round(0.8 * 265200)
}

TEST_CASE("SparseLinear: SpMM, CSC SpMM and SDDMM against dense products on the pattern" *
          doctest::skip(!has_device)) {
  const std::size_t out = 37, in = 200, batch = 19;  // rows not aligned to mask words
  auto w = dsd_test::uniform<float>(out * in, 41);
  const auto x = dsd_test::uniform<float>(batch * in, 42), dy = dsd_test::uniform<float>(batch * out, 43);
  DeviceWeights<float> d(w, "fc", dsd::Shape{out, in});
  dsd::prune(d.layer, 0.7);
  const auto wp = d.buf.download();  // pruned weights
  const dsd::BitMask m = d.layer.mask().to_host();
  dsd::cuda::CusparseHandle handle;
  dsd::cuda::SparseLinear<float> sp(handle, d.layer);
  CHECK(sp.nnz() == m.count());
  dsd::cuda::DeviceBuffer<float> dx_dev(x), ddy(dy), y(batch * out), dx(batch * in),
      dw(std::vector<float>(out * in, -7.0f));
  sp.forward(dx_dev.data(), y.data(), batch);
  sp.backward_data(ddy.data(), dx.data(), batch);
  sp.backward_weights(ddy.data(), dx_dev.data(), dw.data(), batch);
  const auto hy = y.download(), hdx = dx.download(), hdw = dw.download();
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t o = 0; o < out; ++o) {
      double ref = 0;
      for (std::size_t i = 0; i < in; ++i) ref += double(x[b * in + i]) * wp[o * in + i];
      REQUIRE(hy[b * out + o] == doctest::Approx(ref).epsilon(1e-4));
    }
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t i = 0; i < in; ++i) {
      double ref = 0;
      for (std::size_t o = 0; o < out; ++o) ref += double(dy[b * out + o]) * wp[o * in + i];
      REQUIRE(hdx[b * in + i] == doctest::Approx(ref).epsilon(1e-4));
    }
  for (std::size_t o = 0; o < out; ++o)
    for (std::size_t i = 0; i < in; ++i) {
      if (!m.test(o * in + i)) {
        REQUIRE(hdw[o * in + i] == -7.0f);  // off the pattern: untouched
        continue;
      }
      double ref = 0;
      for (std::size_t b = 0; b < batch; ++b) ref += double(dy[b * out + o]) * x[b * in + i];
      REQUIRE(hdw[o * in + i] == doctest::Approx(ref).epsilon(1e-4));
    }
  // A new pattern after re-dense: every entry is kept, and the products follow the weights.
  dsd::redense(d.layer);
  sp.rebuild();
  CHECK(sp.nnz() == out * in);
  dsd::cuda::CublasHandle cublas;
  const auto t = dsd::cuda::time_step_products(sp, cublas, d.layer, batch);  // runs both paths
  CHECK((t.sparse_ms > 0 && t.dense_ms > 0));
}

TEST_CASE(
    "SparseLinear past 2^31 kept weights: a 65536 x 65536 layer is refused with its name and "
    "count" *
    doctest::skip(!has_device)) {
  // 16 GiB of weights. The kept count was an int scan: dense it wrapped to 0 (an empty pattern,
  // silently), 30 % pruned to a negative count.
  const std::size_t side = 65536, n = side * side;
  dsd::cuda::DeviceBuffer<float> buf(n);
  DSD_CUDA_CHECK(cudaMemset(buf.data(), 0, n * sizeof(float)));
  DLayer<float> layer(dsd::cuda::device_tensor<float>{buf.data(), n, {side, side}}, "huge_fc");
  dsd::cuda::CusparseHandle handle;
  const auto refused = [&](std::size_t kept) {
    try {
      dsd::cuda::SparseLinear<float> sp(handle, layer);
      FAIL("expected dsd::error, got a pattern of " << sp.nnz());
    } catch (const dsd::error& e) {
      CHECK(e.code() == dsd::errc::invalid_argument);
      CHECK(std::string(e.what()) ==
            "dsd: SparseLinear: layer \"huge_fc\" of 65536x65536 keeps " + std::to_string(kept) +
                " weights, more than cuSPARSE's 32-bit indices hold (2147483647)");
    }
  };
  refused(n);
  const auto stats = dsd::prune_exactly(layer, dsd::prune_count(n, 0.3));
  REQUIRE(stats.kept == 3006477107u);
  refused(stats.kept);
}

TEST_CASE("device checkpoints are byte-identical to host ones; sensitivity analysis restores" *
          doctest::skip(!has_device)) {
  const auto w0 = dsd_test::uniform<float>(3000, 51), w1 = dsd_test::uniform<float>(1000, 52);
  const auto g0 = dsd_test::uniform<float>(3000, 53), g1 = dsd_test::uniform<float>(1000, 54);
  std::vector<float> c0 = w0, c1 = w1;
  dsd::Masked h0(c0, "fc1", dsd::Shape{30, 100}), h1(c1, "fc2", dsd::Shape{10, 100});
  DeviceWeights<float> d0(w0, "fc1", {30, 100}), d1(w1, "fc2", {10, 100});
  dsd::cuda::DeviceBuffer<float> dg0(g0), dg1(g1);
  const dsd::Adam adam{.lr = 0.01};
  dsd::prune(dsd::layers(h0, h1), dsd::GlobalSparsity{.sparsity = 0.6});
  dsd::prune(dsd::layers(d0.layer, d1.layer), dsd::GlobalSparsity{.sparsity = 0.6});
  adam.step(h0, g0);
  adam.step(h1, g1);
  const std::vector<dsd::cuda::device_tensor<const float>> grads = {{dg0.data(), 3000}, {dg1.data(), 1000}};
  dsd::cuda::step(adam, dsd::layers(d0.layer, d1.layer), grads);
  // Adam on the GPU may differ in the last ulp (FMA), so compare files written from equal data:
  // give the host layers the device's weights and state first.
  dsd::restore(h0, dsd::snapshot(d0.layer));
  dsd::restore(h1, dsd::snapshot(d1.layer));
  const std::string host_file = "test_cuda_host.safetensors", dev_file = "test_cuda_device.safetensors";
  dsd::io::save_checkpoint(host_file, dsd::layers(h0, h1), {{"note", "x"}});
  dsd::io::save_checkpoint(dev_file, dsd::layers(d0.layer, d1.layer), {{"note", "x"}});
  const auto bytes = [](const std::string& f) {
    std::ifstream in(f, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), {});
  };
  CHECK(bytes(host_file) == bytes(dev_file));
  // Load it into fresh device layers: weights, mask, state and step come back.
  dsd::cuda::DeviceBuffer<float> e0(3000), e1(1000);
  DLayer<float> r0(dsd::cuda::device_tensor<float>{e0.data(), 3000, {30, 100}}, "fc1"),
      r1(dsd::cuda::device_tensor<float>{e1.data(), 1000, {10, 100}}, "fc2");
  CHECK(dsd::io::load_checkpoint(dev_file, dsd::layers(r0, r1)).at("note") == "x");
  CHECK(e0.download() == c0);
  CHECK(words_of(r1.mask().to_host()) == words_of(h1.mask()));
  CHECK(r0.state().step == 1);
  CHECK(r0.state().second.download() == h0.state().second);
  std::remove(host_file.c_str());
  std::remove(dev_file.c_str());

  // Sensitivity: the same table as on the host, and every layer as it was afterwards, also when
  // evaluate() throws.
  const auto nonzero = [](const std::vector<float>& v) {
    return static_cast<double>(std::count_if(v.begin(), v.end(), [](float x) { return x != 0.0f; }));
  };
  const double probes[] = {0.3, 0.8};
  const auto ht = dsd::sensitivity_analysis(dsd::layers(h0, h1), probes, [&] { return nonzero(c0) + nonzero(c1); });
  const auto dt = dsd::sensitivity_analysis(dsd::layers(d0.layer, d1.layer), probes,
                                            [&] { return nonzero(d0.buf.download()) + nonzero(d1.buf.download()); });
  REQUIRE(dt.points.size() == ht.points.size());
  for (std::size_t i = 0; i < ht.points.size(); ++i) CHECK(dt.points[i].accuracy == ht.points[i].accuracy);
  CHECK(d0.buf.download() == c0);
  int calls = 0;
  CHECK_THROWS_AS(dsd::sensitivity_analysis(dsd::layers(d0.layer, d1.layer), probes,
                                            [&]() -> double {
                                              if (++calls == 3) throw std::runtime_error("evaluate failed");
                                              return 0.0;
                                            }),
                  std::runtime_error);
  CHECK(d0.buf.download() == c0);
  CHECK(words_of(d0.layer.mask().to_host()) == words_of(h0.mask()));
}

int main(int argc, char** argv) {
  doctest::Context ctx(argc, argv);
  const int rc = ctx.run();
  if (ctx.shouldExit() || rc != 0) return rc;
  if (!has_device) {
    std::printf("no CUDA device: GPU test cases skipped\n");
    return 77;
  }
  return 0;
}
