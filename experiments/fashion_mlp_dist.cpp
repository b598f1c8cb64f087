// Data-parallel DSD: the MLP of fashion_mlp trained by several MPI processes, each on its slice
// of every global batch, gradients averaged with MPI_Allreduce before each step (the trainer's
// own all-reduce, as in any data-parallel trainer). Every rank prunes on its own: the weights are
// replicated and dsd's selection is deterministic, so the masks agree without traffic, which
// dist::verify_identical checks after every epoch. Only rank 0 prints and writes checkpoints
// (--checkpoint: the weights are replicated); --resume needs the same number of ranks.
// SIGINT or SIGTERM on any rank stops every rank after the same batch: after each batch the ranks
// agree, in one small all-reduce, whether any of them was asked to stop. An error on any rank
// ends the whole job, so that no rank is left waiting in a collective.
//   mpiexec -np 2 fashion_mlp_dist --mode dsd --epochs 4,4,4     (--batch is the global batch)
#include <mpi.h>

#include <dsd/distributed/mpi.hpp>
#include <dsd/distributed/verify.hpp>

#include <cstdint>
#include <iostream>
#include <memory>
#include <sstream>

#include "common/net.hpp"
#include "common/trainer.hpp"

int main(int argc, char** argv) {
  experiments::watch_signals();  // before MPI_Init, whose threads must not take SIGINT either
  MPI_Init(&argc, &argv);
  int rc = 1;
  {
    dsd::dist::Mpi comm;
    const auto ranks = static_cast<std::size_t>(comm.size());
    std::ostringstream quiet;
    std::streambuf* const out = std::cout.rdbuf();
    if (comm.rank() != 0) std::cout.rdbuf(quiet.rdbuf());
    std::vector<std::size_t> hidden = {300, 100};
    experiments::Net* model = nullptr;
    experiments::Options defaults;
    // The gradients' all-reduce and the barrier are on MPI_COMM_WORLD, whose errors are fatal to
    // the whole job; comm's calls throw, and an error ends the job below.
    defaults.data_parallel = {
        .rank = static_cast<std::size_t>(comm.rank()),
        .ranks = ranks,
        .average =
            [&](std::span<float> g) {
              MPI_Allreduce(MPI_IN_PLACE, g.data(), static_cast<int>(g.size()), MPI_FLOAT, MPI_SUM,
                            MPI_COMM_WORLD);
              for (float& x : g) x /= static_cast<float>(ranks);
            },
        .check = [&] { dsd::dist::verify_identical(model->all(), comm); },
        .barrier = [] { MPI_Barrier(MPI_COMM_WORLD); },
        .all_reduce_max = [&](std::span<std::uint64_t> v) { comm.all_reduce_max(v); }};
    rc = experiments::main_with(
        argc, argv, "Data-parallel Dense-Sparse-Dense training of an MLP on Fashion-MNIST (MPI)",
        defaults,
        [&](const experiments::Options& o) {
          DSD_REQUIRE(o.batch % ranks == 0, invalid_argument, "--batch ", o.batch,
                      " (the global batch) must be a multiple of the ", ranks, " ranks");
          auto net = std::make_unique<experiments::Net>(experiments::mlp(hidden), o.batch / ranks, 1000);
          model = net.get();
          return net;
        },
        [&](CLI::App& app) {
          app.add_option("--hidden", hidden, "hidden layer sizes, e.g. 300,100")->delimiter(',');
        });
    std::cout.rdbuf(out);
    // An error on one rank (a failed collective, a checkpoint rank 0 could not write) would leave
    // the others waiting in their next collective: it ends the job on every rank.
    if (rc == 1 && ranks > 1) MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return rc;
}
