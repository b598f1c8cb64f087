#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <dsd/dsd.hpp>
#include <limits>
#include <vector>

#include "test_util.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {
template <class M>
std::vector<bool> bits(const M& m) {
  std::vector<bool> b(m.size());
  for (std::size_t i = 0; i < m.size(); ++i) b[i] = m.test(i);
  return b;
}
struct KeepsAll {  // a broken user policy: ignores the prune count
  static constexpr std::string_view name = "keeps-all";
  void build_mask(std::span<const float>, std::size_t, dsd::BitMask& m,
                  const dsd::PruneInfo&) const {
    m.fill(true);
  }
};
}  // namespace

TEST_CASE_TEMPLATE("every policy prunes exactly round(s * n) weights", M, dsd::BitMask,
                   dsd::ByteMask) {
  for (std::size_t n : {1u, 2u, 3u, 7u, 64u, 65u, 1000u, 4099u}) {
    for (double s : {0.0, 0.001, 0.1, 0.25, 0.5, 0.5001, 0.9, 0.99, 0.999}) {
      auto w = dsd_test::uniform<float>(n, n);
      const std::size_t k = static_cast<std::size_t>(std::llround(s * static_cast<double>(n)));
      dsd::Masked<std::vector<float>, M> a(w, "a");
      CHECK(dsd::prune(a, s).kept == n - k);
      CHECK(a.mask().count() == n - k);
      auto w2 = dsd_test::uniform<float>(n, n);
      dsd::Masked<std::vector<float>, M> b(w2, "b");
      CHECK(dsd::prune(b, s, dsd::RandomCut{.seed = 7}).kept == n - k);
      // Pruned weights are exactly zero, kept ones untouched.
      const auto orig = dsd_test::uniform<float>(n, n);
      for (std::size_t i = 0; i < n; ++i) CHECK(w2[i] == (b.mask().test(i) ? orig[i] : 0.0f));
    }
  }
}

TEST_CASE_TEMPLATE("Keepmax-Cut keeps the largest magnitudes", S, float, double) {
  auto w = dsd_test::uniform<S>(5000, 11);
  const auto orig = w;
  dsd::Masked layer(w, "fc");
  const auto stats = dsd::prune(layer, 0.7);
  S max_pruned = 0, min_kept = std::numeric_limits<S>::max();
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (layer.mask().test(i))
      min_kept = std::min(min_kept, std::abs(orig[i]));
    else
      max_pruned = std::max(max_pruned, std::abs(orig[i]));
  }
  CHECK(max_pruned <= min_kept);
  CHECK(stats.threshold == static_cast<double>(max_pruned));
  CHECK(stats.threshold == static_cast<double>(dsd::kth_magnitude(orig, 3500)));
  CHECK(stats.sparsity == doctest::Approx(0.7));
  CHECK(stats.name == "fc");
}

TEST_CASE("Keepmax-Cut breaks ties by pruning lower indices first") {
  std::vector<float> w = {1, -1, 1, 1, -1, 1};  // all magnitudes equal
  dsd::Masked layer(w);
  dsd::prune(layer, 0.5);
  CHECK(bits(layer.mask()) == std::vector<bool>{false, false, false, true, true, true});
  std::vector<float> v = {3, 2, -2, 1, 2, 5, -2};  // ties at the threshold 2
  dsd::Masked l2(v);
  dsd::prune_exactly(l2, 3);  // prunes 1, then the first two 2s (indices 1, 2)
  CHECK(bits(l2.mask()) == std::vector<bool>{true, false, false, false, true, true, true});
  CHECK(l2.threshold() == 2.0);
}

TEST_CASE("pruning a layer again replaces its mask; zero weights rank lowest") {
  std::vector<double> w = {0.0, 0.5, -0.1, 0.0, 4.0, -3.0};
  dsd::Masked layer(w);
  dsd::prune(layer, 0.5);
  CHECK(bits(layer.mask()) == std::vector<bool>{false, true, false, false, true, true});
  dsd::prune(layer, 0.0);  // sparsity 0 keeps everything again (the zeros stay zero)
  CHECK(layer.mask().count() == 6);
  CHECK(layer.threshold() == 0.0);
  CHECK(w == std::vector<double>{0.0, 0.5, 0.0, 0.0, 4.0, -3.0});
}

TEST_CASE("Random-Cut is reproducible bit for bit and ignores the weights") {
  std::vector<float> a(128, 1.0f), b = dsd_test::uniform<float>(128, 99);
  dsd::Masked la(a, "fc1"), lb(b, "fc1");
  dsd::prune(la, 0.5, dsd::RandomCut{.seed = 42});
  dsd::prune(lb, 0.5, dsd::RandomCut{.seed = 42});
  CHECK(la.mask() == lb.mask());
  // Known answer: the pattern is a pure function of (seed, name, index), the same on every
  // machine; these words were produced by this implementation and pin it down.
  const auto words = la.mask().words();
  CHECK(words[0] == 0x692ad06a23e3795cull);
  CHECK(words[1] == 0xfe347135336c55c8ull);
  CHECK(la.mask().count() == 64);
  // The mixer is SplitMix64's finaliser: its first output from state 0 is a published value.
  CHECK(dsd::detail::mix64(0x9e3779b97f4a7c15ull) == 0xe220a8397b1dcdafull);
  std::vector<float> c(128, 1.0f), d(128, 1.0f);
  dsd::Masked lc(c, "fc1"), ld(d, "fc2");
  dsd::prune(lc, 0.5, dsd::RandomCut{.seed = 43});
  dsd::prune(ld, 0.5, dsd::RandomCut{.seed = 42});
  CHECK(lc.mask() != la.mask());  // another seed
  CHECK(ld.mask() != la.mask());  // another layer
}

#if defined(_OPENMP)
TEST_CASE("pruning results do not depend on the number of threads") {
  const auto orig = dsd_test::uniform<float>(1 << 20, 5);
  const int saved = omp_get_max_threads();
  std::vector<dsd::BitMask> masks;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    auto w = orig, r = orig;
    dsd::Masked lw(w, "w"), lr(r, "r");
    dsd::prune(lw, 0.8);
    dsd::prune(lr, 0.3, dsd::RandomCut{.seed = 1});
    masks.push_back(lw.mask());
    masks.push_back(lr.mask());
  }
  omp_set_num_threads(saved);
  CHECK(masks[0] == masks[2]);
  CHECK(masks[0] == masks[4]);
  CHECK(masks[1] == masks[3]);
  CHECK(masks[1] == masks[5]);
}
#endif

TEST_CASE_TEMPLATE("N:M cut keeps the N largest of every group of M", S, float, double) {
  auto w = dsd_test::uniform<S>(8 * 16, 21);
  const auto orig = w;
  dsd::Masked layer(dsd::raw_tensor<S>{w.data(), w.size(), {8, 16}}, "nm");
  const auto stats = dsd::prune(layer, dsd::NMCut<2, 4>::sparsity, dsd::NMCut<2, 4>{});
  CHECK(stats.kept == w.size() / 2);
  for (std::size_t g = 0; g < w.size(); g += 4) {
    int kept = 0;
    for (std::size_t i = g; i < g + 4; ++i) {
      kept += layer.mask().test(i);
      for (std::size_t j = g; j < g + 4; ++j)
        if (layer.mask().test(i) && !layer.mask().test(j))
          CHECK(std::abs(orig[i]) >= std::abs(orig[j]));
    }
    CHECK(kept == 2);
  }
  std::vector<S> ties = {1, 1, 1, 1, 2, -2, 2, 2, 0, 5, 0, 0};
  dsd::Masked lt(dsd::raw_tensor<S>{ties.data(), ties.size(), {1, 12}});
  dsd::prune(lt, 0.75, dsd::NMCut<1, 4>{});
  CHECK(bits(lt.mask()) == std::vector<bool>{false, false, false, true, false, false, false, true,
                                             false, true, false, false});
}

TEST_CASE("N:M cut along Shape::outer groups M runs at the same position") {
  // Storage 4 runs x 3: groups are {c, 3 + c, 6 + c, 9 + c}. Group 0 holds |1 4 3 2| (keeps
  // 4 and -3), group 1 |9 8 7 1| (keeps -9 and 8), group 2 |5 6 2 3| (keeps 5 and -6).
  std::vector<float> w = {1, -9, 5, 4, 8, -6, -3, 7, 2, 2, 1, 3};
  dsd::Masked layer(dsd::raw_tensor<float>{w.data(), w.size(), {4, 3}}, "colmajor");
  dsd::prune(layer, 0.5, dsd::NMCut<2, 4, dsd::group_dim::outer>{});
  CHECK(bits(layer.mask()) == std::vector<bool>{false, true, true, true, true, true,
                                                true, false, false, false, false, false});
  CHECK(w == std::vector<float>{0, -9, 5, 4, 8, -6, -3, 0, 0, 0, 0, 0});
  std::vector<float> v(12, 1.0f);
  dsd::Masked rows3(dsd::raw_tensor<float>{v.data(), 12, {3, 4}}, "fc");
  CHECK_THROWS_WITH_AS(dsd::prune(rows3, 0.5, dsd::NMCut<2, 4, dsd::group_dim::outer>{}),
                       "dsd: NMCut<2,4> groups along Shape::outer, which must be a multiple of 4; "
                       "layer \"fc\" has 3 x 4",
                       dsd::error);
}

TEST_CASE("N:M cut rejects layers and sparsities it cannot honour") {
  std::vector<float> w(12, 1.0f);
  dsd::Masked rows6(dsd::raw_tensor<float>{w.data(), 12, {2, 6}}, "fc");
  CHECK_THROWS_WITH_AS(
      dsd::prune(rows6, 0.5, dsd::NMCut<2, 4>{}),
      "dsd: NMCut<2,4> groups along Shape::inner, which must be a multiple of 4; layer \"fc\" "
      "has 2 x 6",
      dsd::error);
  dsd::Masked flat(w, "fc");
  CHECK_THROWS_WITH_AS(dsd::prune(flat, 0.7, dsd::NMCut<2, 4>{}),
                       "dsd: NMCut<2,4> prunes exactly 2 of every 4 weights (sparsity 0.5); layer "
                       "\"fc\" was asked to prune 8 of 12",
                       dsd::error);
}

TEST_CASE("pruning refuses NaN and Inf weights, naming the layer and index") {
  std::vector<float> w = {1, 2, std::nanf(""), 4};
  dsd::Masked layer(w, "conv1");
  CHECK_THROWS_WITH_AS(
      dsd::prune(layer, 0.5),
      "dsd: layer \"conv1\" has a non-finite weight (nan) at index 2; cannot prune "
      "it by magnitude",
      dsd::error);
  w[2] = -std::numeric_limits<float>::infinity();
  try {
    dsd::prune(layer, 0.5);
    FAIL("expected dsd::error");
  } catch (const dsd::error& e) {
    CHECK(e.code() == dsd::errc::non_finite);
  }
  CHECK(layer.mask().count() == 4);  // a failed prune leaves the layer untouched
  CHECK(w[0] == 1.0f);
}

TEST_CASE("a pruning policy that breaks its contract is caught") {
  std::vector<float> w(10, 1.0f);
  dsd::Masked layer(w, "fc");
  CHECK_THROWS_WITH_AS(
      dsd::prune(layer, 0.5, KeepsAll{}),
      "dsd: pruning policy \"keeps-all\" kept 10 of the 10 weights of layer \"fc\"; "
      "expected exactly 5",
      dsd::error);
}

TEST_CASE("prune_lowest honours an arbitrary user score") {
  dsd::BitMask m(6, true);
  const std::vector<double> score = {0.5, -3.0, 2.0, -3.0, 0.0, 7.0};
  const double t = dsd::prune_lowest(6, 3, m, [&](std::size_t i) { return score[i]; });
  CHECK(bits(m) == std::vector<bool>{true, false, true, false, false, true});
  CHECK(t == 0.0);
}

TEST_CASE("prune_lowest: -0 and +0 tie by index; NaN scores are rejected, the mask untouched") {
  // Scores: +0 at index 0, -0 at index 1. Pruning one must take index 0 (equal scores, lower index).
  const std::vector<double> zeros = {0.0, -0.0, 1.0};
  dsd::BitMask m(3);
  dsd::prune_lowest(3, 1, m, [&](std::size_t i) { return zeros[i]; });
  CHECK(!m.test(0));
  CHECK(m.test(1));
  for (double nan : {std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::quiet_NaN()}) {
    const std::vector<double> s = {0.5, nan, 0.25, 0.75};
    dsd::BitMask mask(4);
    CHECK_THROWS_WITH_AS(dsd::prune_lowest(4, 2, mask, [&](std::size_t i) { return s[i]; }),
                         "dsd: score of entry 1 is NaN; prune_lowest cannot rank it", dsd::error);
    CHECK(mask.count() == 4);
  }
  // The same from inside the parallel histogram (large n): no std::terminate, a dsd::error.
  const std::size_t n = std::size_t{1} << 18;
  dsd::BitMask big(n);
  CHECK_THROWS_AS(dsd::prune_lowest(n, n / 2, big,
                                    [&](std::size_t i) {
                                      return i == n - 3 ? std::numeric_limits<float>::quiet_NaN()
                                                        : static_cast<float>(i % 1000);
                                    }),
                  dsd::error);
  CHECK(big.count() == n);
}

TEST_CASE("prune(layers, ...) is all or nothing: a failure in any layer changes none") {
  auto a = dsd_test::uniform<float>(64, 1), b = dsd_test::uniform<float>(64, 2),
       c = dsd_test::uniform<float>(60, 3);
  c[17] = std::numeric_limits<float>::quiet_NaN();
  const auto a0 = a, b0 = b;
  dsd::Masked la(a, "a"), lb(b, "b"), lc(c, "c");
  CHECK_THROWS_WITH_AS(dsd::prune(dsd::layers(la, lb, lc), dsd::UniformSparsity{0.5}),
                       "dsd: layer \"c\" has a non-finite weight (nan) at index 17; cannot prune it by magnitude",
                       dsd::error);
  CHECK(a == a0);
  CHECK(b == b0);
  CHECK((la.mask().count() == 64 && lb.mask().count() == 64));
  // A policy error in the last layer (2:4 groups need rows whose length is a multiple of 4).
  c[17] = 0.5f;
  dsd::Masked la2(a, "a", dsd::Shape{8, 8}), lc2(c, "c", dsd::Shape{6, 10});
  CHECK_THROWS_AS(dsd::prune(dsd::layers(la2, lc2), dsd::UniformSparsity{0.5}, dsd::NMCut<2, 4>{}),
                  dsd::error);
  CHECK(a == a0);
  CHECK(la2.mask().count() == 64);
}

TEST_CASE("Random-Cut needs named layers, and unique names in a collection") {
  auto a = dsd_test::uniform<float>(100, 1), b = dsd_test::uniform<float>(100, 2);
  dsd::Masked unnamed(a), twin1(a, "fc"), twin2(b, "fc");
  CHECK_THROWS_WITH_AS(dsd::prune(unnamed, 0.5, dsd::RandomCut{}), doctest::Contains("RandomCut needs a named layer"),
                       dsd::error);
  CHECK_THROWS_WITH_AS(dsd::prune(dsd::layers(twin1, twin2), dsd::UniformSparsity{0.5}, dsd::RandomCut{}),
                       "dsd: random-cut over a collection: two layers are named \"fc\"", dsd::error);
  CHECK(twin1.mask().count() == 100);
  // Keepmax-Cut does not depend on names: duplicates are fine there.
  CHECK(dsd::prune(dsd::layers(twin1, twin2), dsd::UniformSparsity{0.5}).size() == 2);
}

TEST_CASE("Random-Cut is uniform: every position is pruned about equally often (chi-square)") {
  // 400 independent cuts (one layer name each) of half of 4096 positions. Under a uniform cut each
  // position's count is Binomial(400, 1/2): the chi-square statistic over the 4096 positions has
  // mean 4096 and standard deviation sqrt(2 * 4096) = 90.5. A cut that favours any region (low
  // indices, a stride, a byte of the index) lands far outside 6 standard deviations.
  const std::size_t n = 4096, trials = 400;
  const std::vector<float> w(n, 1.0f);
  std::vector<int> pruned(n, 0);
  for (std::size_t t = 0; t < trials; ++t) {
    dsd::BitMask m(n);
    dsd::RandomCut{.seed = 5}.build_mask(std::span<const float>(w), n / 2, m,
                                         dsd::PruneInfo{"layer" + std::to_string(t), {1, n}});
    REQUIRE(m.count() == n / 2);
    for (std::size_t i = 0; i < n; ++i) pruned[i] += !m.test(i);
  }
  double chi2 = 0;
  for (int c : pruned) chi2 += (c - 200.0) * (c - 200.0) / 100.0;
  CHECK(std::abs(chi2 - 4096.0) < 6 * 90.5);
  // Halves, even/odd and the 16 residues mod 16 each get their share (sd of a half: 640).
  double first = 0, even = 0;
  std::vector<double> mod16(16, 0);
  for (std::size_t i = 0; i < n; ++i) first += i < n / 2 ? pruned[i] : 0, even += i % 2 == 0 ? pruned[i] : 0,
                                     mod16[i % 16] += pruned[i];
  CHECK(std::abs(first - 409600.0) < 6 * 640.0);
  CHECK(std::abs(even - 409600.0) < 6 * 640.0);
  for (double r : mod16) CHECK(std::abs(r - 51200.0) < 6 * 226.3);
  // The same statistic on a cut that prunes the lowest indices fails by orders of magnitude.
  double biased = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double c = i < n / 2 ? 400.0 : 0.0;
    biased += (c - 200.0) * (c - 200.0) / 100.0;
  }
  CHECK(std::abs(biased - 4096.0) > 6 * 90.5);
}

TEST_CASE("a fixed-sparsity policy (N:M) under collection thresholds prunes at its own sparsity") {
  auto a = dsd_test::uniform<float>(64, 1), b = dsd_test::uniform<float>(32, 2), c = dsd_test::uniform<float>(16, 3);
  dsd::Masked la(a, "a", dsd::Shape{8, 8}), lb(b, "b", dsd::Shape{4, 8}), lc(c, "c", dsd::Shape{2, 8});
  // GlobalSparsity asks for 30 % over all layers; 2:4 can only give 50 %, so it does, per layer.
  const auto g = dsd::prune(dsd::layers(la, lb, lc), dsd::GlobalSparsity{.sparsity = 0.3, .exclude = {"c"}},
                            dsd::NMCut<2, 4>{});
  CHECK(g[0].kept == 32);
  CHECK(g[1].kept == 16);
  CHECK(g[2].kept == 16);  // excluded: dense
  const auto u = dsd::prune(dsd::layers(la, lb, lc), dsd::UniformSparsity{.sparsity = 0.9}, dsd::NMCut<1, 4>{});
  CHECK(u[0].kept == 16);
  CHECK(u[2].kept == 4);
}

TEST_CASE("an excluded layer is untouched: its mask stays and a NaN in it blocks nothing") {
  auto a = dsd_test::uniform<float>(100, 71), b = dsd_test::uniform<float>(40, 72);
  dsd::Masked la(a, "a"), lb(b, "b");
  dsd::prune(lb, 0.25);  // a mask of its own from an earlier prune
  const auto b_mask = lb.mask();
  const double b_threshold = lb.threshold();
  const std::size_t kept_at = b_mask.test(0) ? 0 : 1;
  b[kept_at] = std::numeric_limits<float>::quiet_NaN();
  const auto uniform = dsd::UniformSparsity{.sparsity = 0.5, .exclude = {"b"}};
  const auto stats = dsd::prune(dsd::layers(la, lb), uniform);
  CHECK(la.mask().count() == 50);
  CHECK(lb.mask() == b_mask);  // before: a full mask replaced it
  CHECK(lb.threshold() == b_threshold);
  CHECK(std::isnan(b[kept_at]));
  CHECK(stats[1].kept == 30);
  const auto global = dsd::GlobalSparsity{.sparsity = 0.5, .exclude = {"b"}};
  CHECK(dsd::prune(dsd::layers(la, lb), global)[0].kept == 50);
  CHECK(lb.mask() == b_mask);
}

TEST_CASE("a collection whose layers share storage is refused, naming both") {
  std::vector<float> w = dsd_test::uniform<float>(100, 73), other = dsd_test::uniform<float>(10, 74);
  dsd::Masked a(w, "a"), b(w, "b"), c(other, "c");
  const auto before = w;
  CHECK_THROWS_WITH_AS(dsd::prune(dsd::layers(a, c, b), dsd::UniformSparsity{.sparsity = 0.5}),
                       doctest::Contains("prune: layers \"a\" (layer 0) and \"b\" (layer 2) share storage"),
                       dsd::error);
  CHECK(w == before);
  auto d = a.duplicate();
  CHECK_THROWS_AS(dsd::prune(dsd::layers(a, d), dsd::UniformSparsity{.sparsity = 0.5}), dsd::error);
  // two views into one buffer that overlap
  dsd::Masked lo(std::span<float>(w.data(), 60), "lo"), hi(std::span<float>(w.data() + 50, 50), "hi");
  CHECK_THROWS_AS(dsd::prune(dsd::layers(lo, hi), dsd::UniformSparsity{.sparsity = 0.5}), dsd::error);
  // adjacent views are fine
  dsd::Masked left(std::span<float>(w.data(), 50), "left"), right(std::span<float>(w.data() + 50, 50), "right");
  CHECK(dsd::prune(dsd::layers(left, right), dsd::UniformSparsity{.sparsity = 0.5})[1].kept == 25);
}
