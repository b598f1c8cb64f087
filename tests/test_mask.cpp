#include <doctest/doctest.h>

#include <limits>
#include <stdexcept>

#include <algorithm>
#include <dsd/csr.hpp>
#include <dsd/mask.hpp>
#include <vector>

TEST_CASE_TEMPLATE("a new mask keeps or prunes everything", M, dsd::BitMask, dsd::ByteMask) {
  for (std::size_t n : {1u, 63u, 64u, 65u, 1000u}) {
    const M kept(n, true), pruned(n, false);
    CHECK(kept.size() == n);
    CHECK(kept.count() == n);
    CHECK(pruned.count() == 0);
    CHECK(dsd::density(kept) == 1.0);
    CHECK(dsd::sparsity(pruned) == 1.0);
  }
}

TEST_CASE_TEMPLATE("set, test, count and iteration agree", M, dsd::BitMask, dsd::ByteMask) {
  M m(130, false);
  const std::vector<std::size_t> on = {0, 5, 63, 64, 65, 127, 128, 129};
  for (auto i : on) m.set(i, true);
  CHECK(m.count() == on.size());
  for (std::size_t i = 0; i < m.size(); ++i)
    CHECK(m.test(i) == (std::find(on.begin(), on.end(), i) != on.end()));
  std::vector<std::size_t> seen;
  m.for_each_kept([&](std::size_t i) { seen.push_back(i); });
  CHECK(seen == on);
  m.set(64, false);
  CHECK(m.count() == on.size() - 1);
  CHECK_FALSE(m.test(64));
  CHECK(dsd::density(m) == doctest::Approx(7.0 / 130.0));
}

TEST_CASE("BitMask keeps the bits past its size at zero") {
  dsd::BitMask m(70, true);
  CHECK(m.words().size() == 2);
  CHECK(m.words()[1] == (std::uint64_t{1} << 6) - 1);
  m.assign([](std::size_t) { return true; });
  CHECK(m.words()[1] == (std::uint64_t{1} << 6) - 1);
  CHECK(m.count() == 70);
}

TEST_CASE_TEMPLATE("assign packs a predicate, in parallel for large masks", M, dsd::BitMask,
                   dsd::ByteMask) {
  for (std::size_t n : {200u, 1u << 20}) {
    M m(n, false);
    m.assign([](std::size_t i) { return i % 3 == 0; });
    CHECK(m.count() == (n + 2) / 3);
    bool all = true;
    for (std::size_t i = 0; i < n; ++i) all &= m.test(i) == (i % 3 == 0);
    CHECK(all);
  }
}

TEST_CASE_TEMPLATE("a predicate that throws in a parallel assign reaches the caller", M,
                   dsd::BitMask, dsd::ByteMask) {
  // Only a callable that cannot throw runs without the exception capture around the parallel
  // region; one that may throw (this one, on an entry of the second half) must come back as itself.
  M m(std::size_t{1} << 20, true);
  CHECK_THROWS_WITH_AS(m.assign([](std::size_t i) {
    if (i == (std::size_t{3} << 18)) throw std::runtime_error("predicate failed at 786432");
    return false;
  }),
                       "predicate failed at 786432", std::runtime_error);
}

namespace {
/// A predicate's result whose conversion to bool throws: the predicate is noexcept, its use is not.
struct Verdict {
  std::size_t i;
  operator bool() const {
    if (i == (std::size_t{3} << 18)) throw std::runtime_error("verdict failed at 786432");
    return false;
  }
};
}  // namespace

TEST_CASE_TEMPLATE("a predicate whose result throws on conversion to bool reaches the caller", M,
                   dsd::BitMask, dsd::ByteMask) {
  M m(std::size_t{1} << 20, true);
  CHECK_THROWS_WITH_AS(m.assign([](std::size_t i) noexcept { return Verdict{i}; }),
                       "verdict failed at 786432", std::runtime_error);
}

TEST_CASE_TEMPLATE("masks compare by content", M, dsd::BitMask, dsd::ByteMask) {
  M a(100, true), b(100, true);
  CHECK(a == b);
  b.set(99, false);
  CHECK(a != b);
  a.set(99, false);
  CHECK(a == b);
  CHECK(M(100, true) != M(101, true));
}

TEST_CASE_TEMPLATE("CSR conversion round-trips", M, dsd::BitMask, dsd::ByteMask) {
  M m(3 * 5, false);
  // row 0: cols 1,4; row 1: empty; row 2: cols 0,2,3
  for (auto i : {1, 4, 10, 12, 13}) m.set(static_cast<std::size_t>(i), true);
  const dsd::CsrPattern csr = dsd::to_csr(m, dsd::Shape{3, 5});
  CHECK(csr.rows == 3);
  CHECK(csr.cols == 5);
  CHECK(csr.row_ptr == std::vector<std::int64_t>{0, 2, 2, 5});
  CHECK(csr.col_idx == std::vector<std::int32_t>{1, 4, 0, 2, 3});
  CHECK(dsd::from_csr<M>(csr) == m);
}

TEST_CASE("CSR conversion rejects inconsistent input") {
  const dsd::BitMask m(12, true);
  CHECK_THROWS_WITH_AS((void)dsd::to_csr(m, dsd::Shape{5, 5}),
                       "dsd: shape 5x5 has 25 entries but the mask has 12", dsd::error);
  dsd::CsrPattern bad{2, 3, {0, 1, 2}, {0, 3}};
  CHECK_THROWS_WITH_AS((void)dsd::from_csr(bad), "dsd: CSR column index 3 at position 1 is outside [0, 3)",
                       dsd::error);
  bad = {2, 3, {0, 2, 1}, {0, 1}};
  CHECK_THROWS_AS((void)dsd::from_csr(bad), dsd::error);
  bad = {2, 3, {0, 1}, {0}};
  CHECK_THROWS_WITH_AS((void)dsd::from_csr(bad), "dsd: CSR row_ptr has 2 entries, expected rows + 1 = 3",
                       dsd::error);
}

TEST_CASE_TEMPLATE("changed_entries counts flipped entries", M, dsd::BitMask, dsd::ByteMask) {
  M a(130, true), b(130, true);
  CHECK(dsd::changed_entries(a, b) == 0);
  b.set(0, false);
  b.set(129, false);
  a.set(64, false);
  CHECK(dsd::changed_entries(a, b) == 3);
  CHECK_THROWS_AS((void)dsd::changed_entries(a, M(3, true)), dsd::error);
}

TEST_CASE("from_csr validates every offset before reading any column index") {
  // row_ptr {0, 5, 2} with 2 non-zeros: row 0 would read col_idx[2..4] past the end.
  const dsd::CsrPattern decreasing{2, 3, {0, 5, 2}, {0, 1}};
  CHECK_THROWS_WITH_AS((void)dsd::from_csr(decreasing), "dsd: CSR row_ptr decreases at row 1 (5 then 2)",
                       dsd::error);
  const dsd::CsrPattern huge{std::size_t{1} << 40, std::size_t{1} << 40, {0}, {}};
  CHECK_THROWS_WITH_AS((void)dsd::from_csr(huge), "dsd: CSR shape 1099511627776 x 1099511627776 overflows size_t",
                       dsd::error);
  const dsd::CsrPattern negative{1, 3, {0, 1}, {-1}};
  CHECK_THROWS_AS((void)dsd::from_csr(negative), dsd::error);
  // rows = SIZE_MAX: rows + 1 wrapped to 0, an empty row_ptr passed and front() was read
  const dsd::CsrPattern wrap{std::numeric_limits<std::size_t>::max(), 0, {}, {}};
  CHECK_THROWS_WITH_AS((void)dsd::from_csr(wrap),
                       doctest::Contains("CSR shape 18446744073709551615 x 0 overflows size_t"),
                       dsd::error);
  const dsd::CsrPattern duplicate{1, 3, {0, 2}, {1, 1}};
  CHECK_THROWS_WITH_AS((void)dsd::from_csr(duplicate),
                       "dsd: CSR columns of row 0 do not increase at position 1 (1 then 1)", dsd::error);
  const dsd::CsrPattern decreasing_cols{1, 3, {0, 2}, {2, 0}};
  CHECK_THROWS_AS((void)dsd::from_csr(decreasing_cols), dsd::error);
  const std::vector<std::uint64_t> no_words;
  CHECK_THROWS_AS((void)dsd::BitMask::from_words(no_words, std::numeric_limits<std::size_t>::max()),
                  dsd::error);  // (n + 63) / 64 wrapped to 0 words
  const dsd::CsrPattern empty{0, 3, {}, {}};
  CHECK_THROWS_WITH_AS((void)dsd::from_csr(empty), "dsd: CSR row_ptr has 0 entries, expected rows + 1 = 1",
                       dsd::error);
}

TEST_CASE("masks built from raw storage keep their invariants") {
  const std::uint64_t words[] = {~std::uint64_t{0}, 0x3f};
  const auto m = dsd::BitMask::from_words(words, 70);
  CHECK(m.count() == 70);
  const std::uint64_t tail[] = {0, 0x7f};  // bit 70 set in a mask of 70 entries
  CHECK_THROWS_WITH_AS((void)dsd::BitMask::from_words(tail, 70),
                       "dsd: BitMask of 70 entries from words with bits set past entry 70", dsd::error);
  CHECK_THROWS_AS((void)dsd::BitMask::from_words(words, 200), dsd::error);
  const std::uint8_t bytes[] = {1, 0, 1, 1};
  CHECK(dsd::ByteMask::from_bytes(bytes).count() == 3);
  const std::uint8_t bad[] = {1, 0, 255};
  CHECK_THROWS_WITH_AS((void)dsd::ByteMask::from_bytes(bad),
                       "dsd: ByteMask byte 2 is 255; entries must be 0 (pruned) or 1 (kept)", dsd::error);
  // There is no mutable access to the raw words or bytes.
  static_assert(std::is_same_v<decltype(std::declval<dsd::BitMask&>().words()), std::span<const std::uint64_t>>);
  static_assert(std::is_same_v<decltype(std::declval<dsd::ByteMask&>().bytes()), std::span<const std::uint8_t>>);
}
