// dsd_bench: what DSD's kernels cost, each next to a reference measured in the same binary:
// STREAM copy/triad for the memory-bound updates (updates.cpp), std::nth_element / std::sort for
// selection (selection.cpp), mask building (masks.cpp), oneDNN and Eigen dense GEMM for sparse
// products (sparse_products.cpp).
//
//   dsd_bench [--threads=1,2] [--long] [google-benchmark flags]   (default threads: 1 and all
//   cores)
//
// Arguments of every benchmark: element count (or shape index), then the OpenMP thread count.
#include <string>
#include <vector>

#include "common.hpp"

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--threads=", 0) == 0) {
      dsd_bench::g_threads.clear();
      std::size_t pos = 10;
      while (pos < a.size()) {
        const std::size_t comma = a.find(',', pos);
        dsd_bench::g_threads.push_back(std::stoi(a.substr(pos, comma - pos)));
        pos = comma == std::string::npos ? a.size() : comma + 1;
      }
    } else if (a == "--long") {
      dsd_bench::g_long = true;
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  dsd_bench::register_updates();
  dsd_bench::register_selection();
  dsd_bench::register_masks();
  dsd_bench::register_sparse_products();
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
