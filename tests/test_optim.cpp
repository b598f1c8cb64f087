#include <doctest/doctest.h>

#include <cmath>
#include <dsd/dsd.hpp>
#include <limits>
#include <vector>

#include "test_util.hpp"

namespace {
// Scalar references written from the textbook (PyTorch) formulas, then masked afterwards; the
// fused kernels must agree with them.
template <class S>
struct Reference {
  std::vector<S> w, m, v;
  std::vector<bool> keep;
  long t = 0;

  void apply_mask() {
    for (std::size_t i = 0; i < w.size(); ++i)
      if (!keep[i]) w[i] = m[i] = v[i] = 0;
  }
  void sgd(const std::vector<S>& g, double lr, double wd) {
    for (std::size_t i = 0; i < w.size(); ++i) w[i] -= S(lr) * (g[i] + S(wd) * w[i]);
    apply_mask();
  }
  void momentum(const std::vector<S>& g, double lr, double mu, double wd, bool nesterov) {
    for (std::size_t i = 0; i < w.size(); ++i) {
      const S d = g[i] + S(wd) * w[i];
      m[i] = S(mu) * m[i] + d;
      w[i] -= S(lr) * (nesterov ? d + S(mu) * m[i] : m[i]);
    }
    apply_mask();
  }
  void adam(const std::vector<S>& g, double lr, double b1, double b2, double eps, double wd,
            bool decoupled) {
    ++t;
    for (std::size_t i = 0; i < w.size(); ++i) {
      if (decoupled) w[i] *= S(1 - lr * wd);
      const S d = decoupled ? g[i] : g[i] + S(wd) * w[i];
      m[i] = S(b1) * m[i] + (1 - S(b1)) * d;
      v[i] = S(b2) * v[i] + (1 - S(b2)) * d * d;
      const double mhat = double(m[i]) / (1 - std::pow(b1, double(t)));
      const double vhat = double(v[i]) / (1 - std::pow(b2, double(t)));
      w[i] = S(double(w[i]) - lr * mhat / (std::sqrt(vhat) + eps));
    }
    apply_mask();
  }
};

// Runs `step` and the scalar reference side by side for 20 steps on `n` weights (60 % pruned by
// Random-Cut) and checks every weight; returns the final weights.
template <class S, class M, class Step, class RefStep>
std::vector<S> compare(Step step, RefStep ref_step, double tol, std::size_t n = 1000) {
  auto w = dsd_test::uniform<S>(n, 1);
  dsd::Masked<std::vector<S>, M> layer(w, "fc");
  dsd::prune(layer, 0.6, dsd::RandomCut{.seed = 3});
  Reference<S> ref{w, std::vector<S>(n), std::vector<S>(n), {}, 0};
  for (std::size_t i = 0; i < n; ++i) ref.keep.push_back(layer.mask().test(i));
  for (std::uint64_t it = 0; it < 20; ++it) {
    const auto g = dsd_test::uniform<S>(n, 100 + it);
    step(layer, g);
    ref_step(ref, g);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!ref.keep[i]) {
      REQUIRE(w[i] == S(0));  // exactly zero, not merely small
    } else {
      REQUIRE(double(w[i]) == doctest::Approx(double(ref.w[i])).epsilon(tol));
    }
  }
  return w;
}
}  // namespace

#define DSD_OPTIM_TYPES                                            \
  std::pair<float, dsd::BitMask>, std::pair<float, dsd::ByteMask>, \
      std::pair<double, dsd::BitMask>, std::pair<double, dsd::ByteMask>

TEST_CASE_TEMPLATE("fused masked optimizers equal their scalar references", P, DSD_OPTIM_TYPES) {
  using S = typename P::first_type;
  using M = typename P::second_type;
  const double tol = std::is_same_v<S, float> ? 1e-5 : 1e-12;
  SUBCASE("sgd") {
    compare<S, M>([](auto& l, auto& g) { dsd::Sgd{.lr = 0.1, .weight_decay = 0.01}.step(l, g); },
                  [](auto& r, auto& g) { r.sgd(g, 0.1, 0.01); }, tol);
  }
  SUBCASE("momentum") {
    compare<S, M>(
        [](auto& l, auto& g) {
          dsd::MomentumSgd{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3}.step(l, g);
        },
        [](auto& r, auto& g) { r.momentum(g, 0.05, 0.9, 1e-3, false); }, tol);
  }
  SUBCASE("nesterov") {
    compare<S, M>(
        [](auto& l, auto& g) {
          dsd::Nesterov{.lr = 0.05, .momentum = 0.8, .weight_decay = 1e-3}.step(l, g);
        },
        [](auto& r, auto& g) { r.momentum(g, 0.05, 0.8, 1e-3, true); }, tol);
  }
  SUBCASE("adam") {
    compare<S, M>([](auto& l, auto& g) { dsd::Adam{.lr = 0.01, .weight_decay = 1e-2}.step(l, g); },
                  [](auto& r, auto& g) { r.adam(g, 0.01, 0.9, 0.999, 1e-8, 1e-2, false); },
                  tol * 10);
  }
  SUBCASE("adamw") {
    compare<S, M>(
        [](auto& l, auto& g) {
          dsd::AdamW{.lr = 0.01, .beta2 = 0.99, .weight_decay = 0.1}.step(l, g);
        },
        [](auto& r, auto& g) { r.adam(g, 0.01, 0.9, 0.99, 1e-8, 0.1, true); }, tol * 10);
  }
}

TEST_CASE_TEMPLATE("a pruned weight stays exactly zero through 1000 momentum + decay steps", S,
                   float, double) {
  auto w = dsd_test::uniform<S>(257, 8);
  dsd::Masked layer(w, "fc");
  const dsd::Nesterov opt{.lr = 0.1, .momentum = 0.99, .weight_decay = 0.5};
  // Build up momentum everywhere first, so pruning must clear it.
  const std::vector<S> push(w.size(), S(1));
  for (int i = 0; i < 10; ++i) opt.step(layer, push);
  dsd::prune(layer, 0.5);
  for (std::size_t i = 0; i < w.size(); ++i)
    if (!layer.mask().test(i)) REQUIRE(layer.state().first[i] == S(0));
  for (std::uint64_t it = 0; it < 1000; ++it) {
    opt.step(layer, dsd_test::uniform<S>(w.size(), it, 10.0));  // gradients everywhere
    for (std::size_t i = 0; i < w.size(); ++i)
      if (!layer.mask().test(i)) REQUIRE((w[i] == S(0) && layer.state().first[i] == S(0)));
  }
  CHECK(layer.mask().count() == 128);  // round(0.5 * 257) = 129 pruned
}

TEST_CASE("re-dense restarts pruned weights and their Adam moments at zero") {
  auto w = dsd_test::uniform<float>(100, 4);
  dsd::Masked layer(w, "fc");
  const dsd::Adam opt{.lr = 0.01};
  const std::vector<float> g(100, 0.5f);
  opt.step(layer, g);
  dsd::prune(layer, 0.3);
  const dsd::BitMask sparse_mask = layer.mask();
  opt.step(layer, g);
  // Someone writes into a pruned slot behind dsd's back: re-dense still restarts it at zero.
  std::size_t pruned = 0;
  while (sparse_mask.test(pruned)) ++pruned;
  w[pruned] = 5.0f;
  layer.state().first[pruned] = 1.0f;
  dsd::redense(layer);
  CHECK(layer.mask().count() == 100);
  for (std::size_t i = 0; i < 100; ++i) {
    if (sparse_mask.test(i)) continue;
    CHECK(w[i] == 0.0f);
    CHECK(layer.state().first[i] == 0.0f);
    CHECK(layer.state().second[i] == 0.0f);
  }
  opt.step(layer, g);  // now every weight moves again, from zero
  CHECK(w[pruned] != 0.0f);
  CHECK(std::abs(w[pruned]) < 0.02f);
}

TEST_CASE("enforce() serves users who keep their own optimizer") {
  std::vector<float> w = {1, -2, 3, -4};
  dsd::Masked layer(w);
  dsd::prune(layer, 0.5);
  for (auto& x : w) x += 1.0f;  // the user's own update touches every weight
  dsd::enforce(layer);
  CHECK(w == std::vector<float>{0, 0, 4, -3});
}

TEST_CASE("optimizers reject bad gradients and hyper-parameters") {
  std::vector<float> w(10, 1.0f);
  dsd::Masked layer(w, "fc2");
  const std::vector<float> short_grad(9, 0.0f), grad(10, 0.0f);
  CHECK_THROWS_WITH_AS(dsd::Sgd{}.step(layer, short_grad),
                       "dsd: sgd: gradient of 9 elements for layer \"fc2\" of 10 weights",
                       dsd::error);
  CHECK_THROWS_WITH_AS(dsd::MomentumSgd{.lr = -1}.step(layer, grad),
                       "dsd: momentum_sgd: learning rate -1 must be finite and >= 0", dsd::error);
  CHECK_THROWS_WITH_AS(dsd::Nesterov{.momentum = 1.0}.step(layer, grad),
                       "dsd: nesterov: momentum 1 is outside [0, 1)", dsd::error);
  CHECK_THROWS_WITH_AS(dsd::Adam{.beta2 = 1.5}.step(layer, grad),
                       "dsd: adam: betas (0.9, 1.5) must lie in [0, 1)", dsd::error);
  CHECK_THROWS_AS(dsd::AdamW{.eps = 0}.step(layer, grad), dsd::error);
  CHECK(w == std::vector<float>(10, 1.0f));  // nothing was touched
}

TEST_CASE("every optimizer rejects a negative or non-finite weight decay") {
  std::vector<float> w(10, 1.0f);
  const std::vector<float> g(10, 0.5f);
  dsd::Masked l(w, "fc");
  const double bad[] = {-1e-4, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()};
  for (double wd : bad) {
    CHECK_THROWS_WITH_AS(dsd::Sgd{.weight_decay = wd}.step(l, g), doctest::Contains("sgd: weight decay"), dsd::error);
    CHECK_THROWS_AS(dsd::MomentumSgd{.weight_decay = wd}.step(l, g), dsd::error);
    CHECK_THROWS_AS(dsd::Nesterov{.weight_decay = wd}.step(l, g), dsd::error);
    CHECK_THROWS_AS(dsd::Adam{.weight_decay = wd}.step(l, g), dsd::error);
    CHECK_THROWS_AS(dsd::AdamW{.weight_decay = wd}.step(l, g), dsd::error);
  }
  CHECK(w == std::vector<float>(10, 1.0f));  // nothing was updated
  CHECK(l.state().step == 0);
}

TEST_CASE_TEMPLATE("the parallel path (n past the threshold, 1 and 2 threads) equals the scalar reference", P,
                   DSD_OPTIM_TYPES) {
  using S = typename P::first_type;
  using M = typename P::second_type;
  const double tol = std::is_same_v<S, float> ? 1e-5 : 1e-12;
  const std::size_t n = 100003;  // past detail::parallel_threshold, not a multiple of 64
  static_assert(100003 > dsd::detail::parallel_threshold);
  const auto momentum = [](auto& l, auto& g) {
    dsd::MomentumSgd{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3}.step(l, g);
  };
  const auto momentum_ref = [](auto& r, auto& g) { r.momentum(g, 0.05, 0.9, 1e-3, false); };
  const auto nesterov = [](auto& l, auto& g) {
    dsd::Nesterov{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3}.step(l, g);
  };
  const auto nesterov_ref = [](auto& r, auto& g) { r.momentum(g, 0.05, 0.9, 1e-3, true); };
  const auto adamw = [](auto& l, auto& g) { dsd::AdamW{.lr = 0.01, .weight_decay = 0.1}.step(l, g); };
  const auto adamw_ref = [](auto& r, auto& g) { r.adam(g, 0.01, 0.9, 0.999, 1e-8, 0.1, true); };
  std::vector<std::vector<S>> results[3];
  for (int threads : {1, 2}) {
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#endif
    results[0].push_back(compare<S, M>(momentum, momentum_ref, tol, n));
    results[1].push_back(compare<S, M>(nesterov, nesterov_ref, tol, n));
    results[2].push_back(compare<S, M>(adamw, adamw_ref, tol * 10, n));
  }
#if defined(_OPENMP)
  omp_set_num_threads(2);
#endif
  for (const auto& r : results) CHECK(r[0] == r[1]);  // bitwise: chunks split by index only
}
