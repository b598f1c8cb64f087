// Device weight histograms (dsd/backend/cuda/histogram.cuh) against the host's
// dsd::io::weight_histogram on the same weights and mask: bin for bin, at exact edges, with
// infinities, NaN, bad options, the global-memory path for many bins, and non-default streams.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <dsd/backend/cuda.cuh>
#include <dsd/dsd.hpp>
#include <dsd/io/histogram.hpp>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../test_util.hpp"
#include "util.cuh"

namespace {
using dsd_test::DeviceWeights;
using dsd_test::DLayer;
using dsd_test::has_device;
using dsd_test::NonBlockingStream;

// A generic caller reaches the device overload both ways: qualified in dsd::io, and unqualified
// (argument-dependent lookup), as dsd::io::weight_histograms calls it.
static_assert(
    std::is_same_v<decltype(dsd::io::weight_histogram(std::declval<const DLayer<float>&>())),
                   dsd::io::WeightHistogram>);
static_assert(std::is_same_v<decltype(weight_histogram(std::declval<const DLayer<double>&>(),
                                                       dsd::io::HistogramOptions{})),
                             dsd::io::WeightHistogram>);

/// A mask keeping each position with probability 1/2, the same on every platform.
dsd::BitMask random_mask(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  dsd::BitMask m(n, true);
  for (std::size_t i = 0; i < n; ++i) m.set(i, (gen() >> 17 & 1u) != 0);
  return m;
}

/// A host layer and a device layer of the same weights `w` under the same mask; the pruned
/// positions hold w's values again after set_mask zeroed them (a histogram ignores what they
/// hold). The device layer's kernels are queued on `stream`.
template <class S>
struct SameLayers {
  std::vector<S> cpu;
  dsd::Masked<std::vector<S>> host;
  DeviceWeights<S> dev;
  SameLayers(const std::vector<S>& w, const dsd::BitMask& mask, std::string name = "fc",
             cudaStream_t stream = nullptr)
      : cpu(w), host(cpu, name), dev(w, name, {}, stream) {
    host.set_mask(mask);
    dev.layer.set_mask(mask);
    std::copy(w.begin(), w.end(), cpu.begin());
    dev.buf.copy_from_host(w, 0, stream);  // after the layer's enforce, on its stream
  }
};

void check_equal(const dsd::io::WeightHistogram& d, const dsd::io::WeightHistogram& h) {
  CHECK(d.layer == h.layer);
  CHECK(d.range == h.range);
  REQUIRE(d.counts.size() == h.counts.size());
  std::size_t differing = 0, first = 0;
  for (std::size_t b = 0; b < h.counts.size(); ++b)
    if (d.counts[b] != h.counts[b] && differing++ == 0) first = b;
  CAPTURE(first);
  CHECK(differing == 0);
  CHECK(d.pruned == h.pruned);
  CHECK(d.below == h.below);
  CHECK(d.above == h.above);
}

/// The device histogram of `l` (on its stream, and on `other` when given) equals the host's.
template <class S>
void check_same(SameLayers<S>& l, const dsd::io::HistogramOptions& o,
                cudaStream_t other = nullptr) {
  CAPTURE(o.bins);
  CAPTURE(o.range);
  const auto h = dsd::io::weight_histogram(l.host, o);
  const auto d = dsd::cuda::weight_histogram(l.dev.layer, o);
  check_equal(d, h);
  CHECK(d.kept() + d.pruned == l.dev.layer.size());
  check_equal(dsd::io::weight_histogram(l.dev.layer, o), h);  // the same function through dsd::io
  check_equal(dsd::cuda::weight_histogram(l.dev.layer, o, other), h);
}

/// The error `f` throws (its code and message); fails when it throws none.
template <class F>
std::pair<dsd::errc, std::string> error_of(F&& f) {
  try {
    (void)f();
  } catch (const dsd::error& e) {
    return {e.code(), e.what()};
  }
  FAIL("expected dsd::error");
  return {};
}

template <class S>
void check_random(std::uint64_t seed) {
  const std::size_t n = (std::size_t{1} << 18) + 37;
  auto w = dsd_test::uniform<S>(n, seed, 0.4);
  for (std::size_t i = 0; i < n; i += 101) w[i] = S(0);  // a spike of zeros, as after re-dense
  const auto mask = random_mask(n, seed + 1);
  SameLayers<S> l(w, mask);
  CHECK(l.dev.layer.mask().count() == mask.count());
  // The last two: the most bins counted in shared memory, and the fewest counted in global memory.
  constexpr std::size_t most_shared = dsd::cuda::detail::histogram_shared_slots - 4;
  const std::size_t bins[] = {1, 2, 37, 64, 1000, most_shared, most_shared + 1};
  for (const std::size_t b : bins) {
    check_same(l, {.bins = b, .range = 0.0});   // the range found: largest kept |w|
    check_same(l, {.bins = b, .range = 0.25});  // kept weights outside on both sides
  }
  check_same(l, {.bins = 64, .range = 1e-300});  // nearly everything outside, scale huge
  check_same(l, {.bins = 64, .range = std::numeric_limits<double>::max()});  // 2r overflows
  const auto found = dsd::cuda::weight_histogram(l.dev.layer, {.bins = 8});
  CHECK(found.range > 0.3);
  CHECK(found.range <= 0.41);  // 0.4 rounded to float may lie just above 0.4
  CHECK(found.below == 0);
  CHECK(found.above == 0);
}
}  // namespace

TEST_SUITE_BEGIN("histogram");

TEST_CASE("device histograms equal the host's bin by bin, float and double" *
          doctest::skip(!has_device)) {
  check_random<float>(11);
  check_random<double>(12);
}

TEST_CASE("device histograms at exact edges, with infinities, all-zero and all-pruned layers" *
          doctest::skip(!has_device)) {
  const float inf = std::numeric_limits<float>::infinity();
  {  // the host test's layer: range 1, 4 bins, edges -1, -0.5, 0, 0.5, 1
    std::vector<float> w = {-1, -0.75f, -0.5f, -0.25f, 0, 0.25f, 0.5f, 1, 2, -inf, 0.1f, 0.3f};
    dsd::BitMask mask(w.size(), true);
    mask.set(10, false), mask.set(11, false);
    SameLayers<float> l(w, mask, "w");
    const auto d = dsd::cuda::weight_histogram(l.dev.layer, {.bins = 4, .range = 1.0});
    CHECK(d.counts == std::vector<std::uint64_t>{2, 2, 2, 2});
    CHECK(d.pruned == 2);
    CHECK(d.above == 1);
    CHECK(d.below == 1);
    check_same(l, {.bins = 4, .range = 1.0});
    const auto found = dsd::cuda::weight_histogram(l.dev.layer, {.bins = 2});
    CHECK(found.range == 2.0);  // -inf is not the largest finite |w|; stays below
    CHECK(found.counts == std::vector<std::uint64_t>{4, 5});
    CHECK(found.below == 1);
    check_same(l, {.bins = 2});
  }
  // Every bin edge of ranges whose edges are not exact in binary, its neighbours either side, the
  // range's ends and just beyond them, +-inf, -0, the extremes: the device's double arithmetic
  // must put each where the host's does.
  const auto edges = [](auto tag, double r, std::size_t bins) {
    using S = decltype(tag);
    std::vector<S> w;
    const dsd::io::WeightHistogram shape{"", r, std::vector<std::uint64_t>(bins, 0)};
    for (std::size_t i = 0; i <= bins; ++i) {
      const auto e = static_cast<S>(shape.edge(i));
      w.push_back(e);
      w.push_back(std::nextafter(e, std::numeric_limits<S>::infinity()));
      w.push_back(std::nextafter(e, -std::numeric_limits<S>::infinity()));
    }
    const S lim = std::numeric_limits<S>::infinity();
    for (const S x :
         {S(r), S(-r), S(-0.0), std::numeric_limits<S>::max(), -std::numeric_limits<S>::max(),
          std::numeric_limits<S>::denorm_min(), lim, -lim})
      w.push_back(x);
    const std::size_t n = w.size();
    for (std::size_t i = 0; i < n; ++i) w.push_back(w[i]);  // a second copy, pruned
    dsd::BitMask mask(w.size(), true);
    for (std::size_t i = n; i < w.size(); ++i) mask.set(i, false);
    SameLayers<S> l(w, mask, "edges");
    check_same(l, {.bins = bins, .range = r});
    check_same(l, {.bins = bins, .range = 0.0});  // range found: float's max, or double's clamped to 1e300
    const auto d = dsd::cuda::weight_histogram(l.dev.layer, {.bins = bins, .range = r});
    CHECK(d.pruned == n);
    CHECK(d.above >= 2);  // +max, +inf (and nextafter(r) upwards)
    CHECK(d.below >= 2);
  };
  for (const double r : {1.0, 0.7, 0.3, 1.0 / 3.0, 2.5e-3, 1e6})
    for (const std::size_t bins :
         {std::size_t{1}, std::size_t{3}, std::size_t{10}, std::size_t{64}, std::size_t{999}}) {
      CAPTURE(r);
      CAPTURE(bins);
      edges(float{}, r, bins);
      edges(double{}, r, bins);
    }
  {  // kept weights all zero: range 1 when asked to find it; all pruned: every position in pruned
    std::vector<double> zeros(1000, 0.0);
    SameLayers<double> z(zeros, dsd::BitMask(zeros.size(), true), "z");
    const auto d = dsd::cuda::weight_histogram(z.dev.layer, {.bins = 3});
    CHECK(d.range == 1.0);
    CHECK(d.counts == std::vector<std::uint64_t>{0, 1000, 0});
    check_same(z, {.bins = 3});
    auto w = dsd_test::uniform<double>(777, 3);
    w[5] = std::numeric_limits<double>::quiet_NaN();
    SameLayers<double> none(w, dsd::BitMask(w.size(), false), "none");
    const auto p = dsd::cuda::weight_histogram(none.dev.layer, {.bins = 5});
    CHECK(p.range == 1.0);
    CHECK(p.pruned == 777);
    CHECK(p.kept() == 0);
    check_same(none, {.bins = 5});
  }
}

TEST_CASE("a kept NaN is refused naming the layer and its first index; a pruned one is ignored" *
          doctest::skip(!has_device)) {
  const auto check = [](auto tag) {
    using S = decltype(tag);
    const std::size_t n = 100000;
    auto w = dsd_test::uniform<S>(n, 21);
    const S nan = std::numeric_limits<S>::quiet_NaN();
    dsd::BitMask mask(n, true);
    w[60000] = nan;  // kept, but after 4321: the lowest index is named, whichever thread meets
    w[4321] = nan;   // which first
    w[17] = nan, mask.set(17, false);  // pruned: ignored
    SameLayers<S> l(w, mask, "conv1");
    for (const dsd::io::HistogramOptions o :
         {dsd::io::HistogramOptions{.bins = 16, .range = 0.0},
          dsd::io::HistogramOptions{.bins = 16, .range = 0.5},
          dsd::io::HistogramOptions{.bins = 1 << 20, .range = 0.0}}) {
      CAPTURE(o.bins);
      const auto h = error_of([&] { return dsd::io::weight_histogram(l.host, o); });
      const auto d = error_of([&] { return dsd::cuda::weight_histogram(l.dev.layer, o); });
      CHECK(h.first == dsd::errc::non_finite);
      CHECK(d.first == dsd::errc::non_finite);
      CHECK(d.second == h.second);
      CHECK(d.second ==
            "dsd: layer \"conv1\" has a NaN weight at index 4321; its histogram cannot bin it");
    }
    // Only the pruned NaN left: no error, and the host's counts.
    l.cpu[60000] = l.cpu[4321] = S(0.125);
    const S fix = S(0.125);
    DSD_CUDA_CHECK(cudaMemcpy(l.dev.buf.data() + 60000, &fix, sizeof fix, cudaMemcpyHostToDevice));
    DSD_CUDA_CHECK(cudaMemcpy(l.dev.buf.data() + 4321, &fix, sizeof fix, cudaMemcpyHostToDevice));
    check_same(l, {.bins = 16});
    check_same(l, {.bins = 16, .range = 0.5});
    check_same(l, {.bins = 1 << 20});
  };
  check(float{});
  check(double{});
}

TEST_CASE("bad histogram options are refused on the device with the host's messages" *
          doctest::skip(!has_device)) {
  const auto w = dsd_test::uniform<float>(1000, 5);
  SameLayers<float> l(w, dsd::BitMask(w.size(), true), "fc1");
  const double nan = std::numeric_limits<double>::quiet_NaN(),
               inf = std::numeric_limits<double>::infinity();
  for (const dsd::io::HistogramOptions o :
       {dsd::io::HistogramOptions{.bins = 0},
        dsd::io::HistogramOptions{.bins = (std::size_t{1} << 24) + 1},
        dsd::io::HistogramOptions{.bins = 8, .range = -0.5},
        dsd::io::HistogramOptions{.bins = 8, .range = inf},
        dsd::io::HistogramOptions{.bins = 8, .range = nan},
        dsd::io::HistogramOptions{.bins = 8, .range = 1e-301},
        dsd::io::HistogramOptions{.bins = 8, .range = 1e301},
        dsd::io::HistogramOptions{.bins = 0, .range = -1}}) {
    CAPTURE(o.bins);
    CAPTURE(o.range);
    const auto h = error_of([&] { return dsd::io::weight_histogram(l.host, o); });
    const auto d = error_of([&] { return dsd::cuda::weight_histogram(l.dev.layer, o); });
    CHECK(h.first == dsd::errc::invalid_argument);
    CHECK(d.first == dsd::errc::invalid_argument);
    CHECK(d.second == h.second);
  }
}

TEST_CASE("many bins count in global memory: 2^20 bins against the host, 2^24 by hand" *
          doctest::skip(!has_device)) {
  const std::size_t n = (std::size_t{1} << 18) + 37;
  auto w = dsd_test::uniform<float>(n, 31, 0.05);
  const auto mask = random_mask(n, 32);
  SameLayers<float> l(w, mask, "wide");
  check_same(l, {.bins = std::size_t{1} << 20});
  check_same(l, {.bins = std::size_t{1} << 20, .range = 0.01});
  auto d = dsd_test::uniform<double>(n, 33);
  SameLayers<double> ld(d, mask, "wide64");
  check_same(ld, {.bins = std::size_t{1} << 20, .range = 0.5});

  // The most bins allowed: -1, 0 and 1 at the first, middle and last bin.
  std::vector<float> three = {-1.0f, 0.0f, 1.0f, 0.0f};
  SameLayers<float> t(three, dsd::BitMask(three.size(), true), "three");
  const std::size_t most = std::size_t{1} << 24;
  const auto h = dsd::cuda::weight_histogram(t.dev.layer, {.bins = most, .range = 1.0});
  REQUIRE(h.counts.size() == most);
  CHECK(h.counts[0] == 1);
  CHECK(h.counts[most / 2] == 2);
  CHECK(h.counts[most - 1] == 1);
  CHECK(h.kept() == 4);
}

TEST_CASE("device histograms on non-default streams see the writes queued there" *
          doctest::skip(!has_device)) {
  const std::size_t n = (std::size_t{1} << 18) + 37;
  const auto before = dsd_test::uniform<float>(n, 41, 0.2);
  const auto after = dsd_test::uniform<float>(n, 42, 0.9);
  const auto mask = random_mask(n, 43);
  NonBlockingStream a, b;
  SameLayers<float> l(before, mask, "s", a);
  const dsd::io::HistogramOptions o{.bins = 50};
  const auto want_before = dsd::io::weight_histogram(l.host, o);
  std::copy(after.begin(), after.end(), l.cpu.begin());
  const auto want_after = dsd::io::weight_histogram(l.host, o);
  const dsd::cuda::DeviceBuffer<float> fresh(after), old(before);
  // On the layer's own stream, queued behind a pending write (read too early: `before`).
  dsd_test::late_copy(l.dev.buf.data(), fresh.data(), n, a);
  check_equal(dsd::cuda::weight_histogram(l.dev.layer, o), want_after);
  // On another non-blocking stream, ordered after the layer's by an event (read too early:
  // `after`).
  dsd_test::late_copy(l.dev.buf.data(), old.data(), n, a);
  check_equal(dsd::cuda::weight_histogram(l.dev.layer, o, b), want_before);
  std::copy(before.begin(), before.end(), l.cpu.begin());  // the host layer as the device's
  // The generic caller over a collection of device layers, each on its own stream.
  SameLayers<float> m(after, random_mask(n, 44), "t", b);
  auto dl = dsd::layers(l.dev.layer, m.dev.layer);
  auto hl = dsd::layers(l.host, m.host);
  const auto dh = dsd::io::weight_histograms(dl, o);
  const auto hh = dsd::io::weight_histograms(hl, o);
  REQUIRE(dh.size() == 2);
  REQUIRE(hh.size() == 2);
  check_equal(dh[0], hh[0]);
  check_equal(dh[1], hh[1]);
}

TEST_SUITE_END();
