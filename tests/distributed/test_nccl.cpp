// The NCCL adapter on one GPU (a one-rank NCCL communicator): the collectives' semantics, a
// sharded prune through it equal to the single-process one, and a staging buffer that survives a
// failed allocation. Exits 77 (skipped) without a GPU.
#include <cuda_runtime.h>
#include <nccl.h>
#include <sys/mman.h>

#include <cstdio>
#include <dsd/distributed/nccl.hpp>
#include <dsd/distributed/sharded.hpp>
#include <dsd/dsd.hpp>
#include <span>
#include <vector>

#include "../test_util.hpp"

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: NCCL test skipped\n");
    return 77;
  }
  int failures = 0;
  const auto check = [&](bool ok, const char* what) {
    if (!ok) std::printf("FAILED: %s\n", what), ++failures;
  };
  ncclComm_t nccl;
  const int dev[] = {0};
  dsd::dist::detail::nccl_check(ncclCommInitAll(&nccl, 1, dev), "ncclCommInitAll");
  {
    dsd::dist::Nccl comm(nccl);
    std::vector<std::uint64_t> v = {3, 1, 4};
    comm.all_reduce_sum(v);
    comm.all_reduce_max(v);
    check(v == std::vector<std::uint64_t>{3, 1, 4}, "one-rank all-reduce is the identity");
    check(comm.exclusive_scan_sum(5) == 0, "rank 0's exclusive scan is 0");
    comm.barrier();
    auto w = dsd_test::uniform<float>(10000, 1), whole = w;
    dsd::Masked sharded(w, "fc"), single(whole, "fc");
    dsd::dist::prune(dsd::layers(sharded), dsd::UniformSparsity{.sparsity = 0.7}, comm);
    dsd::prune(dsd::layers(single), dsd::UniformSparsity{.sparsity = 0.7});
    check(sharded.mask() == single.mask(), "a prune through NCCL equals the single-process one");

    // A request past the GPU's memory (1 TiB, over address space reserved but never touched:
    // the adapter allocates before it reads) fails with dsd::error; the buffer it had, and its
    // capacity, stay, so the next smaller request works (it got a null buffer before).
    const std::size_t huge = std::size_t{1} << 37;  // words
    void* reserved = mmap(nullptr, huge * sizeof(std::uint64_t), PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserved == MAP_FAILED) {
      std::printf("cannot reserve 1 TiB of address space: failed-allocation check skipped\n");
    } else {
      bool threw = false;
      try {
        comm.all_reduce_sum(std::span<std::uint64_t>(static_cast<std::uint64_t*>(reserved), huge));
      } catch (const dsd::error& e) {
        threw = e.code() == dsd::errc::backend;
      }
      munmap(reserved, huge * sizeof(std::uint64_t));
      check(threw, "a staging buffer past the GPU's memory is a dsd::error (backend)");
      check(cudaPeekAtLastError() == cudaSuccess, "the failed cudaMalloc leaves no error behind");
      std::vector<std::uint64_t> small = {9, 8};
      bool ok = true;
      try {
        comm.all_reduce_sum(small);
        comm.all_reduce_max(v);
        comm.barrier();
      } catch (const dsd::error& e) {
        std::printf("%s\n", e.what());
        ok = false;
      }
      check(ok && small == std::vector<std::uint64_t>{9, 8} &&
                v == std::vector<std::uint64_t>{3, 1, 4},
            "collectives after a failed allocation still work");
    }
  }
  ncclCommDestroy(nccl);
  std::printf("%s\n", failures == 0 ? "NCCL adapter: all checks passed" : "NCCL adapter: FAILED");
  return failures == 0 ? 0 : 1;
}
