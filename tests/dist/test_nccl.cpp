// The NCCL adapter on one GPU (a one-rank NCCL communicator): the collectives' semantics and a
// sharded prune through it equal the single-process one. Exits 77 (skipped) without a GPU.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>
#include <dsd/dist/nccl.hpp>
#include <dsd/dist/sharded.hpp>
#include <dsd/dsd.hpp>
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
  }
  ncclCommDestroy(nccl);
  std::printf("%s\n", failures == 0 ? "NCCL adapter: all checks passed" : "NCCL adapter: FAILED");
  return failures == 0 ? 0 : 1;
}
