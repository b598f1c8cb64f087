// A tiny trainer outside the dsd tree: fits y = 2x0 - 3x1 with a spare input, through DSD.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <dsd/dsd.hpp>
#include <iostream>
#ifdef DSD_CONSUMER_IO
#include <dsd/io/checkpoint.hpp>
#endif
#include <vector>

int main() {
  std::vector<double> w = {0.1, 0.1, 0.1};
  const std::vector<std::vector<double>> xs = {
      {1, 0, 0.01}, {0, 1, -0.01}, {1, 1, 0.02}, {2, -1, 0.0}};
  dsd::Masked layer(w, "linear");
  dsd::MomentumSgd opt{.lr = 0.05, .momentum = 0.5};
  const auto loss = [&] {
    double l = 0;
    for (const auto& x : xs) {
      const double e = w[0] * x[0] + w[1] * x[1] + w[2] * x[2] - (2 * x[0] - 3 * x[1]);
      l += e * e;
    }
    return l / static_cast<double>(xs.size());
  };
  dsd::Callbacks cb;
  cb.set_lr = dsd::lr_of(opt);  // the schedule sets the lr of every epoch (x0.1 when re-densing)
  cb.train_epoch = [&](const dsd::EpochContext&) {
    for (int it = 0; it < 50; ++it) {
      std::vector<double> g(3, 0.0);
      for (const auto& x : xs) {
        const double e = w[0] * x[0] + w[1] * x[1] + w[2] * x[2] - (2 * x[0] - 3 * x[1]);
        for (int j = 0; j < 3; ++j)
          g[static_cast<std::size_t>(j)] += 2 * e * x[static_cast<std::size_t>(j)] / 4;
      }
      opt.step(layer, g);
    }
    return loss();
  };
  cb.evaluate = [&] { return -loss(); };
  const auto report = dsd::run(
      dsd::layers(layer), {.dense_epochs = 4, .sparse_epochs = 2, .redense_epochs = 2, .lr = 0.05},
      dsd::UniformSparsity{.sparsity = 0.34}, cb);
  dsd::print_report(std::cout, report);
#ifdef DSD_CONSUMER_IO
  dsd::io::save_checkpoint("consumer.safetensors", dsd::layers(layer),
                           {{"note", "from a consumer"}});
  const std::vector<double> trained = w;
  std::fill(w.begin(), w.end(), 0.0);
  const auto meta = dsd::io::load_checkpoint("consumer.safetensors", dsd::layers(layer));
  if (w != trained || meta.at("note") != "from a consumer") return 1;
  std::printf("checkpoint round trip OK\n");
#endif
  const bool ok =
      report.phases.size() == 3 && std::abs(w[0] - 2) < 1e-3 && std::abs(w[1] + 3) < 1e-3;
  std::printf("%s\n", ok ? "consumer OK" : "consumer FAILED");
  return ok ? 0 : 1;
}
