// The CUDA kernels' index arithmetic (dsd/backend/cuda/device_logic.hpp), checked on the CPU against
// naive references: the same functions run inside the kernels.
#include <doctest/doctest.h>

#include <bit>
#include <cstdint>
#include <dsd/backend/cuda/device_logic.hpp>
#include <dsd/detail/counter_rng.hpp>
#include <dsd/threshold/prune_count.hpp>
#include <map>
#include <random>
#include <stdexcept>
#include <vector>

TEST_CASE("owning_segment finds the layer of a group, empty layers included") {
  // Groups per layer: 3, 0 (an empty or excluded layer), 1, 5.
  const std::vector<std::uint64_t> begin = {0, 3, 3, 4, 9};
  const int n = 4;
  const std::vector<int> want = {0, 0, 0, 2, 3, 3, 3, 3, 3};
  for (std::uint64_t g = 0; g < 9; ++g) CHECK(dsd::detail::owning_segment(begin.data(), n, g) == want[g]);
  const std::vector<std::uint64_t> one = {0, 1};
  CHECK(dsd::detail::owning_segment(one.data(), 1, 0) == 0);
}

TEST_CASE("clear_lowest_bits prunes the lowest-index ties first") {
  std::mt19937_64 gen(5);
  for (int trial = 0; trial < 2000; ++trial) {
    const std::uint64_t bits = gen() & gen();
    const std::uint64_t drop = gen() % 70;
    std::uint64_t ref = bits;
    std::uint64_t left = drop;
    for (int b = 0; b < 64 && left > 0; ++b)
      if ((ref >> b) & 1u) ref &= ~(std::uint64_t{1} << b), --left;
    REQUIRE(dsd::detail::clear_lowest_bits(bits, drop) == ref);
    REQUIRE(std::popcount(dsd::detail::clear_lowest_bits(bits, drop)) ==
            std::max(0, std::popcount(bits) - static_cast<int>(drop)));
  }
  CHECK(dsd::detail::ties_to_drop(10, 3) == 7);
  CHECK(dsd::detail::ties_to_drop(3, 10) == 0);
  CHECK(dsd::detail::ties_to_drop(5, 5) == 0);
}

TEST_CASE("count_bits counts a row of a bit-packed mask at any alignment") {
  std::mt19937_64 gen(9);
  std::vector<std::uint64_t> words(20);
  for (auto& w : words) w = gen();
  const auto test = [&](std::size_t i) { return (words[i / 64] >> (i % 64)) & 1u; };
  for (std::size_t begin : {0u, 1u, 63u, 64u, 65u, 100u, 640u})
    for (std::size_t len : {0u, 1u, 5u, 63u, 64u, 65u, 128u, 300u, 500u}) {
      if (begin + len > words.size() * 64) continue;
      std::size_t ref = 0;
      for (std::size_t i = begin; i < begin + len; ++i) ref += test(i);
      CAPTURE(begin);
      CAPTURE(len);
      CHECK(dsd::detail::count_bits(words.data(), begin, begin + len) == ref);
    }
}

TEST_CASE("Random-Cut's integer keys rank exactly as its double scores") {
  // The device ranks random_cut_key; the CPU ranks the double score key * 2^-53. Equal order and
  // equal ties mean equal masks.
  for (std::uint64_t i = 0; i < 5000; ++i) {
    const std::uint64_t a = dsd::detail::random_cut_key(3, 11, i), b = dsd::detail::random_cut_key(3, 11, i + 1);
    const double sa = static_cast<double>(a) * 0x1p-53, sb = static_cast<double>(b) * 0x1p-53;
    REQUIRE(a < (std::uint64_t{1} << 53));
    REQUIRE((a < b) == (sa < sb));
    REQUIRE((a == b) == (sa == sb));
  }
}

TEST_CASE(
    "fits_int32_csr counts kept entries in 64 bits: a 65536 x 65536 layer at 30 % does not fit") {
  using dsd::detail::fits_int32_csr;
  constexpr std::uint64_t max = 2147483647;  // INT32_MAX
  REQUIRE(dsd::detail::int32_csr_limit == max);
  const std::uint64_t side = 65536, n = side * side;
  const std::uint64_t kept = n - dsd::prune_count(n, 0.3);
  CHECK(kept == 3006477107u);
  CHECK(side < max);  // what SparseLinear checked before: rows and cols alone pass
  CHECK(!fits_int32_csr(side, side, kept));
  CHECK(!fits_int32_csr(side, side, n));                             // the layer dense
  CHECK(!fits_int32_csr(side, side, n - dsd::prune_count(n, 0.5)));  // 2^31 kept: one too many
  CHECK(fits_int32_csr(side, side, n - dsd::prune_count(n, 0.51)));
  CHECK(fits_int32_csr(side, side, max));
  CHECK(!fits_int32_csr(side, side, max + 1));
  CHECK(!fits_int32_csr(side, side, std::uint64_t{1} << 32));  // wraps to 0 as an int
  CHECK(fits_int32_csr(max - 1, 1, 0));
  CHECK(!fits_int32_csr(max, 1, 0));  // rows + 1 row offsets must fit
  CHECK(!fits_int32_csr(1, max, 0));
}

namespace {
/// A fake device allocator with a byte budget: allocations past it throw, as cudaMalloc fails.
struct Arena {
  std::size_t budget = 0, used = 0;
  std::map<std::uint64_t*, std::size_t> live;
  std::uint64_t* allocate(std::size_t n) {
    if (used + n > budget) throw std::runtime_error("out of memory");
    auto* p = new std::uint64_t[n];
    live[p] = n;
    used += n;
    return p;
  }
  void release(std::uint64_t* p) {
    used -= live.at(p);
    live.erase(p);
    delete[] p;
  }
  ~Arena() {
    for (auto& [p, n] : live) delete[] p;
  }
};
}  // namespace

TEST_CASE("grow_scratch keeps the old buffer and capacity when an allocation fails") {
  Arena arena;
  arena.budget = 100;
  std::uint64_t* p = nullptr;
  std::size_t capacity = 0;
  const auto grow = [&](std::size_t n) {
    return dsd::detail::grow_scratch(
        p, capacity, n, [&](std::size_t k) { return arena.allocate(k); },
        [&](std::uint64_t* q) { arena.release(q); });
  };
  std::uint64_t* const first = grow(4);
  REQUIRE(first != nullptr);
  CHECK(capacity == 4);
  CHECK(grow(3) == first);  // never shrinks, no new allocation
  // A request past the budget fails: the old buffer stays allocated and described.
  CHECK_THROWS_AS(grow(1000), std::runtime_error);
  CHECK(p == first);
  CHECK(capacity == 4);
  CHECK(arena.live.size() == 1);
  // The next smaller request gets the old buffer (the bug: a null pointer with capacity 4).
  CHECK(grow(2) == first);
  CHECK(grow(4) == first);
  // Growth allocates before it releases, and the old buffer is released once.
  std::uint64_t* const second = grow(50);
  CHECK(second != nullptr);
  CHECK(second != first);
  CHECK(capacity == 50);
  CHECK(arena.live.size() == 1);
  CHECK(arena.live.count(second) == 1);
  // Growth that only fits once the old buffer is freed fails under the strong guarantee.
  CHECK_THROWS_AS(grow(60), std::runtime_error);
  CHECK(p == second);
  CHECK(capacity == 50);
}
