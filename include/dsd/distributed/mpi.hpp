#pragma once
/// \file
/// The MPI adapter of `dist::communicator` (link `dsd::dist`). Errors of the MPI calls are
/// returned, not fatal, on the adapter's communicator and become `dsd::error` (backend) naming
/// the call and MPI's message.

#include <mpi.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "dsd/distributed/communicator.hpp"
#include "dsd/error.hpp"

namespace dsd::dist {

namespace detail {
inline void mpi_check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) [[likely]]
    return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  DSD_THROW(backend, call, " failed: ", std::string(text, static_cast<std::size_t>(len)));
}
}  // namespace detail

/// `communicator` over an MPI communicator (MPI must be initialised and outlive the adapter).
/// The adapter works on a duplicate of `comm`, so its collectives never match a user's.
class Mpi {
 public:
  explicit Mpi(MPI_Comm comm = MPI_COMM_WORLD) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    DSD_REQUIRE(initialised != 0, invalid_argument,
                "dist::Mpi needs MPI_Init (or MPI_Init_thread) to have been called");
    detail::mpi_check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  Mpi(const Mpi&) = delete;
  Mpi& operator=(const Mpi&) = delete;
  ~Mpi() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }
  void all_reduce_sum(std::span<std::uint64_t> v) { reduce(v, MPI_SUM); }
  void all_reduce_min(std::span<std::uint64_t> v) { reduce(v, MPI_MIN); }
  void all_reduce_max(std::span<std::uint64_t> v) { reduce(v, MPI_MAX); }
  [[nodiscard]] std::uint64_t exclusive_scan_sum(std::uint64_t x) {
    std::uint64_t below = 0;
    detail::mpi_check(MPI_Exscan(&x, &below, 1, MPI_UINT64_T, MPI_SUM, comm_), "MPI_Exscan");
    return rank_ == 0 ? 0 : below;  // MPI leaves rank 0's result undefined
  }
  void broadcast(std::span<std::byte> b, int root) {
    for (std::size_t at = 0; at < b.size(); at += chunk)
      detail::mpi_check(MPI_Bcast(b.data() + at, count(b.size() - at), MPI_BYTE, root, comm_),
                        "MPI_Bcast");
  }
  void barrier() { detail::mpi_check(MPI_Barrier(comm_), "MPI_Barrier"); }

 private:
  static constexpr std::size_t chunk = INT_MAX;  // MPI counts are int
  static int count(std::size_t left) { return static_cast<int>(left < chunk ? left : chunk); }
  void reduce(std::span<std::uint64_t> v, MPI_Op op) {
    for (std::size_t at = 0; at < v.size(); at += chunk)
      detail::mpi_check(MPI_Allreduce(MPI_IN_PLACE, v.data() + at, count(v.size() - at),
                                      MPI_UINT64_T, op, comm_),
                        "MPI_Allreduce");
  }
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

static_assert(communicator<Mpi>);

}  // namespace dsd::dist
