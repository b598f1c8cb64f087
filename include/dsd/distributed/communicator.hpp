#pragma once
/// \file
/// What dsd needs from a distributed engine: rank, size, sum/min/max all-reduce of unsigned
/// 64-bit integers, an exclusive prefix sum, a byte broadcast and a barrier. MPI (distributed/mpi.hpp)
/// and NCCL (distributed/nccl.hpp) adapters model it; another engine (torch.distributed, Horovod) needs
/// a struct of about 30 lines. Masks and thresholds never need more: dsd exchanges counts, never
/// weights.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <span>
#include <string>

#include "dsd/error.hpp"

namespace dsd::dist {

/// A communicator over the ranks of one job. Every call is collective: all ranks make it, in the
/// same order, with spans of the same length. The reductions work in place.
template <class C>
concept communicator = requires(C& c, std::span<std::uint64_t> values, std::uint64_t x,
                                std::span<std::byte> bytes, int root) {
  { c.rank() } -> std::convertible_to<int>;
  { c.size() } -> std::convertible_to<int>;
  c.all_reduce_sum(values);
  c.all_reduce_min(values);
  c.all_reduce_max(values);
  /// The sum of `x` over the ranks below this one (0 on rank 0).
  { c.exclusive_scan_sum(x) } -> std::convertible_to<std::uint64_t>;
  c.broadcast(bytes, root);
  c.barrier();
};

/// One process: every collective is the identity. What a single-process trainer passes.
struct SingleProcess {
  [[nodiscard]] int rank() const noexcept { return 0; }
  [[nodiscard]] int size() const noexcept { return 1; }
  void all_reduce_sum(std::span<std::uint64_t>) noexcept {}
  void all_reduce_min(std::span<std::uint64_t>) noexcept {}
  void all_reduce_max(std::span<std::uint64_t>) noexcept {}
  [[nodiscard]] std::uint64_t exclusive_scan_sum(std::uint64_t) noexcept { return 0; }
  void broadcast(std::span<std::byte>, int) noexcept {}
  void barrier() noexcept {}
};

/// Wraps a communicator and counts what this rank sends into collectives (bytes and calls), to
/// measure the traffic of a prune.
template <communicator C>
class Counting {
 public:
  explicit Counting(C& inner) : inner_(&inner) {}
  [[nodiscard]] int rank() const { return inner_->rank(); }
  [[nodiscard]] int size() const { return inner_->size(); }
  void all_reduce_sum(std::span<std::uint64_t> v) { tally(v.size_bytes()), inner_->all_reduce_sum(v); }
  void all_reduce_min(std::span<std::uint64_t> v) { tally(v.size_bytes()), inner_->all_reduce_min(v); }
  void all_reduce_max(std::span<std::uint64_t> v) { tally(v.size_bytes()), inner_->all_reduce_max(v); }
  [[nodiscard]] std::uint64_t exclusive_scan_sum(std::uint64_t x) {
    tally(sizeof x);
    return inner_->exclusive_scan_sum(x);
  }
  void broadcast(std::span<std::byte> b, int root) { tally(b.size()), inner_->broadcast(b, root); }
  void barrier() { tally(0), inner_->barrier(); }

  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::size_t calls() const noexcept { return calls_; }

 private:
  void tally(std::size_t b) noexcept { bytes_ += b, ++calls_; }
  C* inner_;
  std::size_t bytes_ = 0, calls_ = 0;
};

namespace detail {
/// Runs `f` on this rank; if it throws on any rank, every rank throws: the failing rank its own
/// `dsd::error` (code and message kept; any other exception as `errc::io`), the others an error
/// of the first failing rank's code naming that rank. No rank waits in a collective another left.
template <communicator Comm, class F>
void collectively(Comm& comm, const char* what, F&& f) {
  std::string message;
  errc code = errc::io;
  bool failed = true;
  try {
    f();
    failed = false;
  } catch (const error& e) {
    code = e.code();
    message = std::string(e.what()).substr(5);  // without "dsd: ", which error adds back
  } catch (const std::exception& e) {
    message = std::string(what) + ": " + e.what();
  }
  constexpr std::uint64_t none = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t first[] = {failed ? (static_cast<std::uint64_t>(comm.rank()) << 8) |
                                        static_cast<std::uint64_t>(code)
                                  : none};
  comm.all_reduce_min(first);
  if (first[0] == none) return;
  if (failed) throw error(code, message);
  throw error(static_cast<errc>(first[0] & 0xff),
              std::string(what) + " failed on rank " + std::to_string(first[0] >> 8));
}

}  // namespace detail

static_assert(communicator<SingleProcess>);
static_assert(communicator<Counting<SingleProcess>>);

}  // namespace dsd::dist
