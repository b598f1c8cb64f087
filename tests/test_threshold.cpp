#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <dsd/dsd.hpp>
#include <string>
#include <vector>

#include "test_util.hpp"

TEST_CASE("global sparsity prunes exactly the requested share of all layers") {
  // Layers at different scales: the global threshold takes more from the small-weight layer.
  auto a = dsd_test::uniform<float>(3000, 1, 1.0), b = dsd_test::uniform<float>(1000, 2, 0.1),
       c = dsd_test::uniform<float>(777, 3, 0.5);
  const auto a0 = a, b0 = b, c0 = c;
  dsd::Masked la(a, "a"), lb(b, "b"), lc(c, "c");
  const auto stats = dsd::prune(dsd::layers(la, lb, lc), dsd::GlobalSparsity{.sparsity = 0.6});
  const std::size_t total = 3000 + 1000 + 777, kept = stats[0].kept + stats[1].kept + stats[2].kept;
  CHECK(total - kept == static_cast<std::size_t>(std::llround(0.6 * double(total))));
  CHECK(stats[1].sparsity > stats[2].sparsity);
  CHECK(stats[2].sparsity > stats[0].sparsity);
  // Equivalent to one Keepmax-Cut on the concatenation.
  std::vector<float> all(a0);
  all.insert(all.end(), b0.begin(), b0.end());
  all.insert(all.end(), c0.begin(), c0.end());
  std::vector<float> cat(all);
  dsd::Masked lall(cat, "all");
  dsd::prune(lall, 0.6);
  std::size_t i = 0;
  for (const auto* l : {&la.mask(), &lb.mask(), &lc.mask()})
    for (std::size_t j = 0; j < l->size(); ++j, ++i) REQUIRE(l->test(j) == lall.mask().test(i));
}

TEST_CASE("global sparsity splits ties across layers exactly, earlier layers first") {
  std::vector<float> a(10, 1.0f), b(10, 1.0f);
  dsd::Masked la(a, "a"), lb(b, "b");
  const auto stats = dsd::prune(dsd::layers(la, lb), dsd::GlobalSparsity{.sparsity = 0.75});
  CHECK(stats[0].kept == 0);
  CHECK(stats[1].kept == 5);
}

TEST_CASE("global sparsity honours the exclusion list") {
  std::vector<double> a = {1, 2, 3, 4}, b = {0.1, 0.2, 0.3, 0.4};
  dsd::Masked la(a, "a"), lb(b, "embedding");
  const auto stats = dsd::prune(dsd::layers(la, lb),
                                dsd::GlobalSparsity{.sparsity = 0.5, .exclude = {"embedding"}});
  CHECK(stats[0].kept == 2);
  CHECK(stats[1].kept == 4);
  CHECK(a == std::vector<double>{0, 0, 3, 4});
}

TEST_CASE("per-layer sparsity by name, with a fallback") {
  std::vector<float> a(100, 1.0f), b(100, 1.0f), c(100, 1.0f);
  dsd::Masked la(a, "conv1"), lb(b, "fc1"), lc(c, "fc2");
  const dsd::LayerSparsity s{.sparsity = {{"fc1", 0.9}, {"conv1", 0.2}}, .fallback = 0.5};
  const auto stats = dsd::prune(dsd::layers(la, lb, lc), s);
  CHECK(stats[0].kept == 80);
  CHECK(stats[1].kept == 10);
  CHECK(stats[2].kept == 50);
  CHECK_THROWS_WITH_AS(
      dsd::prune(dsd::layers(la), dsd::LayerSparsity{.sparsity = {{"conv1", 1.5}}}),
      "dsd: sparsity 1.5 for layer \"conv1\" is outside [0, 1)", dsd::error);
}

TEST_CASE("Random-Cut at a global sparsity uses the same per-layer counts as Keepmax-Cut") {
  auto a = dsd_test::uniform<float>(500, 1), b = dsd_test::uniform<float>(500, 2, 0.2);
  auto a2 = a, b2 = b;
  dsd::Masked la(a, "a"), lb(b, "b"), ra(a2, "a"), rb(b2, "b");
  const auto keep = dsd::prune(dsd::layers(la, lb), dsd::GlobalSparsity{.sparsity = 0.5});
  const auto rnd = dsd::prune(dsd::layers(ra, rb), dsd::GlobalSparsity{.sparsity = 0.5},
                              dsd::RandomCut{.seed = 9});
  CHECK(keep[0].kept == rnd[0].kept);
  CHECK(keep[1].kept == rnd[1].kept);
  CHECK(la.mask() != ra.mask());
}

TEST_CASE("unknown layer names in exclusions and per-layer sparsities are errors listing the layers") {
  auto a = dsd_test::uniform<float>(100, 1), b = dsd_test::uniform<float>(100, 2);
  dsd::Masked la(a, "conv1"), lb(b, "fc1");
  CHECK_THROWS_WITH_AS(
      dsd::prune(dsd::layers(la, lb), dsd::UniformSparsity{.sparsity = 0.5, .exclude = {"conv_1"}}),
      "dsd: UniformSparsity exclude: no layer named \"conv_1\" (the layers are \"conv1\", \"fc1\")", dsd::error);
  CHECK_THROWS_WITH_AS(dsd::prune(dsd::layers(la, lb), dsd::GlobalSparsity{.sparsity = 0.5, .exclude = {"fc2"}}),
                       doctest::Contains("GlobalSparsity exclude: no layer named \"fc2\""), dsd::error);
  CHECK_THROWS_WITH_AS(dsd::prune(dsd::layers(la, lb), dsd::LayerSparsity{.sparsity = {{"fc", 0.5}}}),
                       doctest::Contains("LayerSparsity: no layer named \"fc\""), dsd::error);
  CHECK(la.mask().count() == 100);
  CHECK(dsd::prune(dsd::layers(la, lb), dsd::LayerSparsity{.sparsity = {{"fc1", 0.5}}})[1].kept == 50);
}

TEST_CASE("a global cut's ties go to earlier layers first, and an inconsistent cut is refused") {
  // Three layers with 2, 0 and 1 keys below the cut key and 3, 2 and 2 keys equal to it.
  const std::vector<std::uint64_t> less = {2, 0, 1}, equal = {3, 2, 2};
  CHECK(dsd::detail::global_cut_ties(less, equal, 3) == std::vector<std::uint64_t>{0, 0, 0});
  CHECK(dsd::detail::global_cut_ties(less, equal, 6) == std::vector<std::uint64_t>{3, 0, 0});
  CHECK(dsd::detail::global_cut_ties(less, equal, 8) == std::vector<std::uint64_t>{3, 2, 0});
  CHECK(dsd::detail::global_cut_counts(less, equal, 9) == std::vector<std::size_t>{5, 2, 2});
  CHECK(dsd::detail::global_cut_counts(less, equal, 10) == std::vector<std::size_t>{5, 2, 3});
  CHECK_THROWS_WITH_AS(dsd::detail::global_cut_ties(less, equal, 11),
                       "dsd: global cut of 11 weights: 1 more than the keys at the cut key; the "
                       "selection is inconsistent",
                       dsd::error);
  CHECK_THROWS_WITH_AS(dsd::detail::global_cut_ties(less, equal, 2),
                       "dsd: global cut of 2 weights: 3 keys lie below the cut key; the selection "
                       "is inconsistent",
                       dsd::error);
  // The host-device core, as the CUDA path's host side calls it.
  constexpr auto split = [] {
    const std::uint64_t eq[] = {1, 4, 4};
    std::uint64_t ties[3] = {};
    const std::uint64_t left = dsd::detail::split_cut_ties(eq, 3, 6, ties);
    return ties[0] * 100 + ties[1] * 10 + ties[2] + left * 1000;
  }();
  static_assert(split == 141);
}

TEST_CASE("GlobalSparsity's cut says where it fell in each layer, and prune builds the masks from it") {
  // |w|: a = {1, 2, 2, 3}, b = {2, 2, 0.5, 4}, c = {5, 6}: 10 weights, 60 % = 6 pruned. Sorted:
  // 0.5 1 2 2 2 2 3 4 5 6, the 6th lowest is 2: below it a's 1 and b's 0.5, and of the four 2s
  // the four that remain needed: a's two, then b's two (earlier layers first).
  std::vector<float> a = {1, -2, 2, 3}, b = {2, -2, 0.5f, 4}, c = {5, 6};
  dsd::Masked la(a, "a"), lb(b, "b"), lc(c, "c");
  auto all = dsd::layers(la, lb, lc);
  const auto cut = dsd::GlobalSparsity{.sparsity = 0.6}.cut(all);
  CHECK(cut.counts == std::vector<std::size_t>{3, 3, 0});
  REQUIRE(cut.at.size() == 3);
  const std::uint64_t two = dsd::detail::magnitude_key(2.0f), one = dsd::detail::magnitude_key(1.0f);
  CHECK(cut.at[0].key == two);
  CHECK(cut.at[0].ties == 2);
  CHECK(cut.at[0].largest == two);
  CHECK(cut.at[1].ties == 2);
  CHECK(cut.at[2].ties == 0);
  CHECK(cut.at[2].largest == 0);
  // At 20 % (2 pruned: 0.5 and 1) the cut key is 1: a prunes its one tie, b only a key below it.
  const auto small = dsd::GlobalSparsity{.sparsity = 0.2}.cut(all);
  CHECK(small.counts == std::vector<std::size_t>{1, 1, 0});
  CHECK(small.at[0].ties == 1);
  CHECK(small.at[1].ties == 0);
  CHECK(small.at[1].largest == dsd::detail::magnitude_key(0.5f));
  CHECK(small.at[1].key == one);

  // The masks and thresholds built from the cut equal a per-layer Keepmax-Cut of its counts.
  for (const double sparsity : {0.2, 0.6, 0.9}) {
    std::vector<float> a2 = a, b2 = b, c2 = c, a3 = a, b3 = b, c3 = c;
    dsd::Masked ga(a2, "a"), gb(b2, "b"), gc(c2, "c"), pa(a3, "a"), pb(b3, "b"), pc(c3, "c");
    const auto global = dsd::prune(dsd::layers(ga, gb, gc), dsd::GlobalSparsity{.sparsity = sparsity});
    auto per_layer = dsd::layers(pa, pb, pc);
    const auto counts = dsd::GlobalSparsity{.sparsity = sparsity}.prune_counts(per_layer);
    const auto sa = dsd::prune_exactly(pa, counts[0]);
    const auto sb = dsd::prune_exactly(pb, counts[1]);
    const auto sc = dsd::prune_exactly(pc, counts[2]);
    CHECK(ga.mask() == pa.mask());
    CHECK(gb.mask() == pb.mask());
    CHECK(gc.mask() == pc.mask());
    CHECK(global[0].threshold == sa.threshold);
    CHECK(global[1].threshold == sb.threshold);
    CHECK(global[2].threshold == sc.threshold);
    CHECK(a2 == a3);
  }
}

namespace {
struct CountsOnly {  // a user's policy: counts alone, a cut without a key
  template <class C>
  std::vector<std::size_t> prune_counts(C&) const {
    return {1, 3};
  }
};
struct ShortCut {
  template <class C>
  dsd::Cut cut(C&) const {
    return {{1, 1}, {dsd::LayerCut{}}};
  }
};
struct GivenCut {  // a user's policy that hands over a cut of its own, right or wrong
  dsd::Cut given;
  template <class C>
  dsd::Cut cut(C&) const {
    return given;
  }
};
}  // namespace

TEST_CASE("a threshold policy gives a cut or bare counts, and a cut of the wrong size is refused") {
  std::vector<float> a = {1, 2, 3, 4}, b = {4, 3, 2, 1};
  dsd::Masked la(a, "a"), lb(b, "b");
  const auto stats = dsd::prune(dsd::layers(la, lb), CountsOnly{});
  CHECK(stats[0].kept == 3);
  CHECK(stats[1].kept == 1);
  CHECK(b == std::vector<float>{4, 0, 0, 0});
  CHECK_THROWS_WITH_AS(dsd::prune(dsd::layers(la, lb), ShortCut{}),
                       "dsd: threshold policy returned 2 prune counts and 1 cut positions for 2 layers",
                       dsd::error);
  CHECK(b == std::vector<float>{4, 0, 0, 0});  // refused before any layer changed
}

TEST_CASE("a cut a user's policy hands over is checked, and its threshold is the layer's own") {
  const std::uint64_t two = dsd::detail::magnitude_key(2.0f);
  std::vector<float> a = {1, 2, 3, 4}, b = {4, 3, 2, 1};
  dsd::Masked la(a, "a"), lb(b, "b");
  // Right key and ties, wrong `largest`: the masks follow the key, the thresholds are 1 and 2.
  const GivenCut lying{{{1, 2}, {dsd::LayerCut{two, 0, 12345}, dsd::LayerCut{two, 1, 0}}}};
  const auto stats = dsd::prune(dsd::layers(la, lb), lying);
  CHECK(a == std::vector<float>{0, 2, 3, 4});
  CHECK(b == std::vector<float>{4, 3, 0, 0});
  CHECK(stats[0].threshold == 1.0);
  CHECK(stats[1].threshold == 2.0);

  std::vector<float> c = {1, 2, 3, 4}, d = {4, 3, 2, 1};
  dsd::Masked lc(c, "c"), ld(d, "d");
  const GivenCut wide{{{1, 1}, {dsd::LayerCut{std::uint64_t{1} << 40, 0, 0}, dsd::LayerCut{two, 0, 0}}}};
  CHECK_THROWS_WITH_AS(dsd::prune(dsd::layers(lc, ld), wide),
                       "dsd: the cut given for layer \"c\" (key 1099511627776, ties 0) does not fit "
                       "its 4 weights of 32-bit keys",
                       dsd::error);
  const GivenCut miscounted{{{2, 1}, {dsd::LayerCut{two, 0, 0}, dsd::LayerCut{two, 0, 0}}}};
  CHECK_THROWS_WITH_AS(dsd::prune(dsd::layers(lc, ld), miscounted),
                       ("dsd: the cut given for layer \"c\" (key " + std::to_string(two) +
                        ", ties 0) prunes 1 of its 4 weights; its count says 2")
                           .c_str(),
                       dsd::error);
  CHECK(c == std::vector<float>{1, 2, 3, 4});  // nothing changed: all or nothing
  CHECK(d == std::vector<float>{4, 3, 2, 1});
}

TEST_CASE("a user's cut whose ties are not there, or whose key is past every weight, gets the real threshold") {
  std::vector<float> a = {1, 2, 3, 4}, b = {1, 2, 3, 4};
  dsd::Masked la(a, "a"), lb(b, "b");
  // A tie at 2.5, which no weight has: the mask prunes 1 and 2, so the threshold is 2, not 2.5.
  const GivenCut no_tie{{{2}, {dsd::LayerCut{dsd::detail::magnitude_key(2.5f), 1, 0}}}};
  CHECK(dsd::prune(dsd::layers(la), no_tie)[0].threshold == 2.0);
  CHECK(a == std::vector<float>{0, 0, 3, 4});
  // The key of a NaN (above every finite key) prunes all four: the threshold is 4, not NaN.
  const GivenCut past{{{4}, {dsd::LayerCut{0x7fc00000u, 1, 0}}}};
  CHECK(dsd::prune(dsd::layers(lb), past)[0].threshold == 4.0);
}
