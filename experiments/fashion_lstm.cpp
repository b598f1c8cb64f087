// DSD on Fashion-MNIST with an LSTM reading the 28 image rows (oneDNN's LSTM primitive) and a
// classifier on its last hidden state. The recurrent and FC weights are pruned; the input
// projection is excluded by default, as the paper kept NeuralTalk's word embedding dense.
//   fashion_lstm --mode dsd --epochs 3,3,3 --sparsity 0.5 --lr 0.1
//   fashion_lstm --exclude ""        (prune the input projection too)
#include <memory>

#include "common/net.hpp"
#include "common/trainer.hpp"

int main(int argc, char** argv) {
  int hidden = 128;
  experiments::Options defaults;
  defaults.epochs = {3, 3, 3};
  defaults.lr = 0.1;  // best validation accuracy of 0.01, 0.03, 0.1 (docs/results.md)
  defaults.exclude = {"lstm.input"};
  return experiments::main_with(
      argc, argv, "Dense-Sparse-Dense training of a row-reading LSTM on Fashion-MNIST (oneDNN)",
      defaults,
      [&](const experiments::Options& o) {
        return std::make_unique<experiments::Net>(experiments::row_lstm(hidden), o.batch, 1000);
      },
      [&](CLI::App& app) {
        app.add_option("--hidden", hidden, "LSTM hidden size")->check(CLI::Range(1, 4096));
      });
}
