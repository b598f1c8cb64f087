// Weight histograms (fixed bins over a symmetric range, pruned positions apart) against a direct
// count, and the run recorder on a real D -> S -> D run.
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <dsd/dsd.hpp>
#include <dsd/io/histogram.hpp>
#include <dsd/io/run_recorder.hpp>
#include <limits>
#include <vector>

#include "test_util.hpp"

TEST_CASE("a histogram's bins hold the kept weights by edge, pruned positions apart") {
  // Range 1, 4 bins: edges -1, -0.5, 0, 0.5, 1; a bin holds [lower, upper), the last also 1.
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> w = {-1, -0.75f, -0.5f, -0.25f, 0, 0.25f, 0.5f, 1, 2, -inf, 0.1f, 0.3f};
  dsd::Masked layer(w, "w");
  dsd::BitMask mask(w.size(), true);
  mask.set(10, false), mask.set(11, false);
  layer.set_mask(mask, 0.0);  // zeroes 0.1 and 0.3: counted as pruned, not in bin 2
  const auto h = dsd::io::weight_histogram(layer, {.bins = 4, .range = 1.0});
  CHECK(h.layer == "w");
  CHECK(h.counts == std::vector<std::uint64_t>{2, 2, 2, 2});
  CHECK(h.pruned == 2);
  CHECK(h.above == 1);
  CHECK(h.below == 1);
  CHECK(h.kept() == 10);
  CHECK(h.edge(0) == -1.0);
  CHECK(h.edge(2) == 0.0);
  CHECK(h.edge(4) == 1.0);

  // Range found: the largest finite kept |w| (2 here; -inf stays below).
  const auto found = dsd::io::weight_histogram(layer, {.bins = 2});
  CHECK(found.range == 2.0);
  CHECK(found.counts == std::vector<std::uint64_t>{4, 5});
  CHECK(found.below == 1);
  std::vector<double> zeros(5, 0.0);
  dsd::Masked z(zeros, "z");
  CHECK(dsd::io::weight_histogram(z, {.bins = 3}).range == 1.0);
  CHECK(dsd::io::weight_histogram(z, {.bins = 3}).counts == std::vector<std::uint64_t>{0, 5, 0});
}

TEST_CASE("histograms equal a direct count, float and double, across parallel chunks") {
  const auto check = [](auto tag) {
    using S = decltype(tag);
    auto w = dsd_test::uniform<S>(std::size_t{1} << 18, 7, 0.3);
    dsd::Masked layer(w, "big");
    (void)dsd::prune(layer, 0.4);
    const auto h = dsd::io::weight_histogram(layer, {.bins = 37, .range = 0.25});
    std::vector<std::uint64_t> direct(37, 0);
    std::uint64_t pruned = 0, below = 0, above = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      if (!layer.mask().test(i)) {
        ++pruned;
        continue;
      }
      const double x = static_cast<double>(w[i]);
      if (x < -0.25) ++below;
      else if (x > 0.25) ++above;
      else
        for (std::size_t b = 0; b < 37; ++b)
          if (x >= h.edge(b) && (x < h.edge(b + 1) || b == 36)) {
            ++direct[b];
            break;
          }
    }
    CHECK(h.counts == direct);
    CHECK(h.pruned == pruned);
    CHECK(pruned == std::size_t(0.4 * double(w.size()) + 0.5));
    CHECK(h.below == below);
    CHECK(h.above == above);
    CHECK(below > 0);
  };
  check(float{});
  check(double{});
}

TEST_CASE("the range found is the largest finite kept |w|: pruned, infinite and tail values") {
  const auto check = [](auto tag) {
    using S = decltype(tag);
    // 3 chunks' worth and a tail block of 37: the maximum sits in the tail, a larger one is
    // pruned, infinities are kept but not finite.
    auto w = dsd_test::uniform<S>((std::size_t{3} << 15) + 37, 11, 0.5);
    w[w.size() - 5] = S(-0.875);                          // the largest finite kept |w|
    w[70] = std::numeric_limits<S>::infinity();           // kept, counted above the range
    w[71] = -std::numeric_limits<S>::infinity();          // kept, counted below it
    w[w.size() - 1] = S(3.0);                             // pruned below
    dsd::Masked layer(w, "tail");
    dsd::BitMask mask(w.size(), true);
    mask.set(w.size() - 1, false);
    layer.set_mask(mask, 0.0);
    w[w.size() - 1] = S(3.0);  // a pruned position holding a value: it never sets the range
    const auto h = dsd::io::weight_histogram(layer, {.bins = 8});
    CHECK(h.range == 0.875);
    CHECK(h.above == 1);
    CHECK(h.below == 1);
    CHECK(h.pruned == 1);
    CHECK(h.kept() == w.size() - 1);
    CHECK(h.counts.front() >= 1);  // -0.875 is in the first bin
  };
  check(float{});
  check(double{});
  std::vector<float> zeros(100, 0.0f);
  dsd::Masked z(zeros, "zeros");
  CHECK(dsd::io::weight_histogram(z, {.bins = 4}).range == 1.0);  // all kept zero: range 1
}

TEST_CASE("weights on a bin's edge, tiny, huge or denormal go where the edges say") {
  // Every inner edge, and the doubles just below it, for several bin counts and ranges.
  for (const std::size_t bins : {2u, 3u, 7u, 10u, 37u, 64u})
    for (const double range : {1.0, 0.3, 2.5e-7, 1e300, 1e-300}) {
      CAPTURE(bins);
      CAPTURE(range);
      dsd::io::WeightHistogram shape{"", range, std::vector<std::uint64_t>(bins, 0)};
      std::vector<double> w{-range, range};
      for (std::size_t i = 1; i < bins; ++i) {
        w.push_back(shape.edge(i));
        w.push_back(std::nextafter(shape.edge(i), -INFINITY));
        w.push_back(std::nextafter(shape.edge(i), INFINITY));
      }
      dsd::Masked layer(w, "edges");
      const auto h = dsd::io::weight_histogram(layer, {.bins = bins, .range = range});
      std::vector<std::uint64_t> direct(bins, 0);
      for (const double x : w) {
        std::size_t b = 0;
        while (b + 1 < bins && x >= h.edge(b + 1)) ++b;
        ++direct[b];
      }
      CHECK(h.counts == direct);
      CHECK(h.below + h.above == 0);
    }
  {
    std::vector<double> w{-0.8, 0.5};  // -0.8 is edge(1) of 10 bins over [-1, 1]
    dsd::Masked layer(w, "edge");
    const auto h = dsd::io::weight_histogram(layer, {.bins = 10, .range = 1.0});
    CHECK(h.edge(1) == -0.8);
    CHECK(h.counts[1] == 1);
    CHECK(h.counts[7] == 1);
  }
  {
    std::vector<float> w{-1e-20f, 1.0f};  // a tiny negative weight is left of zero
    dsd::Masked layer(w, "tiny");
    CHECK(dsd::io::weight_histogram(layer, {.bins = 2}).counts == std::vector<std::uint64_t>{1, 1});
  }
  {
    std::vector<double> w{DBL_MAX, -1.0, 1.0};  // the range found stops at 1e300
    dsd::Masked layer(w, "huge");
    const auto h = dsd::io::weight_histogram(layer, {.bins = 4});
    CHECK(h.range == 1e300);
    CHECK(h.above == 1);
    CHECK(h.counts == std::vector<std::uint64_t>{0, 1, 1, 0});
  }
  {
    std::vector<double> w{5e-324, -1e-323, 0.0};  // denormal: the range found starts at 1e-300
    dsd::Masked layer(w, "denormal");
    const auto h = dsd::io::weight_histogram(layer, {.bins = 4});
    CHECK(h.range == 1e-300);
    CHECK(h.counts == std::vector<std::uint64_t>{0, 1, 2, 0});
  }
}

TEST_CASE("a NaN weight is refused by name and index; bad options are refused") {
  std::vector<float> w = {0.5f, std::nanf(""), 0.25f};
  dsd::Masked layer(w, "fc1");
  CHECK_THROWS_WITH_AS((void)dsd::io::weight_histogram(layer, {.bins = 4, .range = 1.0}),
                       "dsd: layer \"fc1\" has a NaN weight at index 1; its histogram cannot bin it",
                       dsd::error);
  dsd::BitMask mask(3, true);
  mask.set(1, false);
  layer.set_mask(mask, 0.0);  // a pruned NaN is zeroed and counted as pruned
  CHECK(dsd::io::weight_histogram(layer, {.bins = 4, .range = 1.0}).pruned == 1);
  CHECK_THROWS_WITH_AS((void)dsd::io::weight_histogram(layer, {.bins = 0}),
                       "dsd: weight_histogram of layer \"fc1\": 0 bins; give 1 to 16777216", dsd::error);
  CHECK_THROWS_AS((void)dsd::io::weight_histogram(layer, {.bins = 4, .range = -1.0}), dsd::error);
  CHECK_THROWS_AS((void)dsd::io::weight_histogram(layer, {.bins = 4, .range = std::nan("")}), dsd::error);
  CHECK_THROWS_WITH_AS((void)dsd::io::weight_histogram(layer, {.bins = 4, .range = 1e-301}),
                       doctest::Contains("must be 0 (found from the weights) or within [1e-300, 1e300]"), dsd::error);
  CHECK_THROWS_AS((void)dsd::io::weight_histogram(layer, {.bins = 4, .range = 1e301}), dsd::error);
}

TEST_CASE("the run recorder records every boundary and epoch of a D -> S -> D run") {
  std::vector<float> w = dsd_test::uniform<float>(1000, 3, 1.0);
  dsd::Masked layer(w, "fc");
  dsd::Callbacks cb;
  int my_phases = 0;
  cb.before_phase = [&](const dsd::EpochContext&) { ++my_phases; };  // kept by attach
  cb.set_lr = dsd::lr_from_context;
  cb.train_epoch = [&](const dsd::EpochContext&) {
    for (auto& x : w) x *= 1.01f;  // move every weight, pruned ones too (run re-applies the mask)
    layer.enforce();
    return 0.5;
  };
  cb.evaluate = [] { return 0.75; };
  dsd::io::RunRecorder recorder({.bins = 20, .range = 1.2});
  auto all = dsd::layers(layer);
  recorder.attach(cb, all);
  const dsd::Schedule schedule{.dense_epochs = 1, .sparse_epochs = 2, .redense_epochs = 1, .lr = 0.1};
  (void)dsd::run(all, schedule, dsd::UniformSparsity{.sparsity = 0.5}, cb);
  CHECK(my_phases == 3);
  const auto& b = recorder.boundaries();
  REQUIRE(b.size() == 6);
  CHECK(b[0].opening);
  CHECK(!b[1].opening);
  CHECK(b[2].phase == dsd::Phase::sparse);
  CHECK(b[2].opening);
  CHECK(b[0].layers[0].pruned == 0);
  CHECK(b[2].layers[0].pruned == 500);  // right after the prune: half the positions
  // The gap at zero: no kept weight in the two middle bins (|w| < 0.12) right after pruning.
  CHECK(b[2].layers[0].counts[9] + b[2].layers[0].counts[10] == 0);
  CHECK(b[3].layers[0].pruned == 500);
  CHECK(b[4].phase == dsd::Phase::redense);
  CHECK(b[4].layers[0].pruned == 0);
  CHECK(b[4].layers[0].counts[10] >= 500);  // the spike of restored zeros, bin [0, 0.12)
  CHECK(b[5].layers[0].kept() == 1000);
  const auto& e = recorder.epochs();
  REQUIRE(e.size() == 4);
  CHECK(e[0].sparsity == 0.0);
  CHECK(e[1].sparsity == 0.5);
  CHECK(e[2].global_epoch == 2);
  CHECK(e[3].phase == dsd::Phase::redense);
  CHECK(e[3].sparsity == 0.0);
  CHECK(e[1].lr == doctest::Approx(0.1 * schedule.sparse_lr_scale));
  CHECK(e[1].loss == 0.5);
  CHECK(e[1].accuracy == 0.75);
}
