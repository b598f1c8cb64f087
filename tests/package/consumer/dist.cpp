// dsd::dist outside the dsd tree: a one-rank (singleton) MPI job prunes its shard.
#include <mpi.h>

#include <cstdio>
#include <dsd/distributed/mpi.hpp>
#include <dsd/distributed/sharded.hpp>
#include <dsd/dsd.hpp>
#include <vector>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  bool ok = false;
  {
    dsd::dist::Mpi comm;
    std::vector<float> w = {0.1f, -0.5f, 0.3f, 0.9f};
    dsd::Masked layer(w, "fc");
    const auto stats =
        dsd::dist::prune(dsd::layers(layer), dsd::UniformSparsity{.sparsity = 0.5}, comm);
    ok = comm.size() == 1 && stats.size() == 1 && stats[0].kept == 2 && w[0] == 0.0f &&
         w[1] == -0.5f && w[2] == 0.0f && w[3] == 0.9f;
  }
  MPI_Finalize();
  std::printf("%s\n", ok ? "dist component OK" : "dist component FAILED");
  return ok ? 0 : 1;
}
