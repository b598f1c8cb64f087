// dsd_bench_dist: a global-magnitude prune of VGG-16's 138 M weights sharded over the ranks of
// an MPI job, against the single-process prune of the same weights on rank 0; bytes this rank
// sent into collectives, counted by dist::Counting.
//   mpiexec -np 4 dsd_bench_dist [--sparsity 0.5] [--repeats 3]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <dsd/distributed/mpi.hpp>
#include <dsd/distributed/sharded.hpp>
#include <dsd/dsd.hpp>
#include <string>
#include <vector>

namespace {

// VGG-16's weight tensors (13 conv + 3 FC, 138.3 M weights in all).
const std::vector<std::size_t> vgg16 = {3 * 64 * 9,    64 * 64 * 9,   64 * 128 * 9,  128 * 128 * 9,
                                        128 * 256 * 9, 256 * 256 * 9, 256 * 256 * 9, 256 * 512 * 9,
                                        512 * 512 * 9, 512 * 512 * 9, 512 * 512 * 9, 512 * 512 * 9,
                                        512 * 512 * 9, 25088 * 4096,  4096 * 4096,   4096 * 1000};

/// Element `i` of tensor `l`: the same value on every rank, whatever the sharding.
float weight(std::size_t l, std::size_t i) {
  const std::uint64_t r = dsd::detail::counter_random(10 + l, 0, i);
  return static_cast<float>(static_cast<double>(r >> 11) * 0x1p-53 * 2 - 1) / static_cast<float>(l + 1);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  double sparsity = 0.5;
  int repeats = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--sparsity") sparsity = std::stod(argv[i + 1]);
    if (a == "--repeats") repeats = std::stoi(argv[i + 1]);
  }
  int rank = 0, size = 1;
  {
    dsd::dist::Mpi mpi;
    rank = mpi.rank();
    size = mpi.size();
    // This rank's contiguous slice of every tensor.
    std::vector<std::vector<float>> shards;
    std::size_t total = 0, mine = 0;
    for (std::size_t l = 0; l < vgg16.size(); ++l) {
      const std::size_t n = vgg16[l], begin = n * static_cast<std::size_t>(rank) / static_cast<std::size_t>(size),
                        end = n * static_cast<std::size_t>(rank + 1) / static_cast<std::size_t>(size);
      std::vector<float> s(end - begin);
      for (std::size_t i = begin; i < end; ++i) s[i - begin] = weight(l, i);
      shards.push_back(std::move(s));
      total += n, mine += end - begin;
    }
    const auto original = shards;
    double best = 1e30;
    std::size_t bytes = 0, calls = 0, kept = 0;
    for (int rep = 0; rep < repeats; ++rep) {
      shards = original;
      std::vector<dsd::Masked<std::vector<float>>> layers;
      for (std::size_t l = 0; l < shards.size(); ++l) layers.emplace_back(shards[l], "layer" + std::to_string(l));
      dsd::dist::Counting comm(mpi);
      mpi.barrier();
      const auto t = std::chrono::steady_clock::now();
      const auto stats = dsd::dist::prune(layers, dsd::GlobalSparsity{.sparsity = sparsity}, comm);
      mpi.barrier();
      best = std::min(best, seconds_since(t));
      bytes = comm.bytes(), calls = comm.calls(), kept = 0;
      for (const auto& s : stats) kept += s.kept;
    }
    if (rank == 0) {
      std::printf("sharded: %d ranks, %zu weights (%zu on rank 0), GlobalSparsity %.2f: %zu kept\n", size,
                  total, mine, sparsity, kept);
      std::printf("sharded prune: %.3f s (best of %d); rank 0 sent %zu bytes in %zu collectives\n", best,
                  repeats, bytes, calls);
    }
    // The single-process prune of the same weights on rank 0 (the others wait).
    if (rank == 0) {
      std::vector<std::vector<float>> whole;
      for (std::size_t l = 0; l < vgg16.size(); ++l) {
        std::vector<float> w(vgg16[l]);
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = weight(l, i);
        whole.push_back(std::move(w));
      }
      const auto pristine = whole;
      double single = 1e30;
      std::size_t single_kept = 0;
      for (int rep = 0; rep < repeats; ++rep) {
        whole = pristine;
        std::vector<dsd::Masked<std::vector<float>>> layers;
        for (std::size_t l = 0; l < whole.size(); ++l) layers.emplace_back(whole[l], "layer" + std::to_string(l));
        const auto t = std::chrono::steady_clock::now();
        const auto stats = dsd::prune(layers, dsd::GlobalSparsity{.sparsity = sparsity});
        single = std::min(single, seconds_since(t));
        single_kept = 0;
        for (const auto& s : stats) single_kept += s.kept;
      }
      std::printf("single-process prune: %.3f s (best of %d), %zu kept (%s)\n", single, repeats, single_kept,
                  single_kept == kept ? "same count" : "DIFFERENT COUNT");
    }
    mpi.barrier();
  }
  MPI_Finalize();
  return 0;
}
