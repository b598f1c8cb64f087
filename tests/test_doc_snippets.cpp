// The code blocks of README.md and docs/guide.md that are not whole examples, compiled and run
// here with real checks; tests/check_doc_snippets.cmake fails when a block of those documents is
// not found in this file or another compiled source.
#include <doctest/doctest.h>

#include <cstddef>
#include <dsd/dsd.hpp>
#include <dsd/io/checkpoint.hpp>
#include <dsd/io/report.hpp>
#include <dsd/io/run_recorder.hpp>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "test_util.hpp"

namespace {

/// A user's own tensor type, as in the guide.
class MyTensor {
 public:
  explicit MyTensor(std::vector<float> v) : v_(std::move(v)) {}
  float* ptr() { return v_.data(); }
  const float* ptr() const { return v_.data(); }
  std::size_t numel() const { return v_.size(); }

 private:
  std::vector<float> v_;
};

}  // namespace

// example-begin guide-traits
template <> struct dsd::tensor_traits<MyTensor> {
  using scalar_type = float;
  static float* data(MyTensor& t) { return t.ptr(); }
  static const float* data(const MyTensor& t) { return t.ptr(); }
  static std::size_t size(const MyTensor& t) { return t.numel(); }
  // optional: static dsd::Shape shape(const MyTensor&);  static constexpr bool is_view = ...;
};
// example-end guide-traits

namespace {

// example-begin guide-policy
struct SmallestFirstCut {
  static constexpr std::string_view name = "smallest-first";
  template <class S, class M>
  void build_mask(std::span<const S> w, std::size_t prune, M& mask, const dsd::PruneInfo&) const {
    dsd::prune_lowest(w.size(), prune, mask, [&](std::size_t i) { return w[i]; });
  }
};
// example-end guide-policy

}  // namespace

TEST_CASE("guide: a user's tensor type plugs in through tensor_traits") {
  MyTensor t({0.5f, -3.0f, 0.1f, 2.0f});
  dsd::Masked layer(t, "mine");
  CHECK(layer.weights().data() == t.ptr());
  dsd::prune(layer, 0.5);
  CHECK(std::vector<float>(t.ptr(), t.ptr() + 4) == std::vector<float>{0, -3, 0, 2});
}

TEST_CASE("guide: a user policy on top of prune_lowest prunes the smallest signed values") {
  std::vector<float> w = {0.5f, -3.0f, 0.1f, 2.0f, -0.2f};
  dsd::Masked layer(w, "fc");
  const auto stats = dsd::prune_exactly(layer, 2, SmallestFirstCut{});
  CHECK(stats.kept == 3);
  CHECK(w == std::vector<float>{0.5f, 0, 0.1f, 2.0f, 0});
}

TEST_CASE("README: the steps of the loop called directly") {
  auto w1 = dsd_test::uniform<float>(300, 1), w2 = dsd_test::uniform<float>(100, 2);
  dsd::Masked fc1(w1, "fc1"), fc2(w2, "fc2");
  // example-begin readme-steps
  dsd::prune(dsd::layers(fc1, fc2), dsd::GlobalSparsity{.sparsity = 0.7});  // Keepmax-Cut
  dsd::prune(fc1, 0.5, dsd::RandomCut{.seed = 42});                         // one layer
  dsd::redense(dsd::layers(fc1, fc2));  // pruned weights and optimizer state restart at 0
  // example-end readme-steps
  CHECK(fc1.mask().count() == 300);
  CHECK(fc2.mask().count() == 100);
  std::size_t zeros = 0;
  for (float x : w1) zeros += x == 0.0f;
  CHECK(zeros >= 150);  // at least what Random-Cut pruned restarts at zero
}

TEST_CASE("guide: a checkpoint of two layers round-trips with user metadata") {
  auto w1 = dsd_test::uniform<float>(60, 3), w2 = dsd_test::uniform<float>(20, 4);
  dsd::Masked fc1(w1, "fc1"), fc2(w2, "fc2");
  dsd::prune(dsd::layers(fc1, fc2), dsd::UniformSparsity{.sparsity = 0.5});
  const auto saved1 = w1;
  const auto dir = std::filesystem::temp_directory_path() / "dsd_doc_snippets";
  std::filesystem::create_directories(dir);
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  // example-begin guide-checkpoint
  dsd::io::save_checkpoint("run.safetensors", dsd::layers(fc1, fc2), {{"epoch", "7"}});
  auto meta = dsd::io::load_checkpoint("run.safetensors", dsd::layers(fc1, fc2));
  // example-end guide-checkpoint
  CHECK(meta.at("epoch") == "7");
  CHECK(w1 == saved1);
  CHECK(fc1.mask().count() == 30);
  std::filesystem::current_path(cwd);
  std::filesystem::remove_all(dir);
}

TEST_CASE("guide: a run recorded and written as an HTML report") {
  auto w = dsd_test::uniform<float>(400, 5);
  dsd::Masked fc1(w, "fc1");
  auto layers = dsd::layers(fc1);
  dsd::Callbacks cb;
  cb.set_lr = dsd::lr_from_context;
  cb.train_epoch = [&](const dsd::EpochContext&) { return 0.5; };
  cb.evaluate = [] { return 0.75; };
  const dsd::Schedule schedule{.dense_epochs = 1, .sparse_epochs = 1, .redense_epochs = 1, .lr = 0.1};
  const dsd::UniformSparsity thresholds{.sparsity = 0.5};
  const dsd_test::TempDir dir("dsd_doc_report");
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path);
  // example-begin guide-report
  dsd::io::RunRecorder recorder;
  recorder.attach(cb, layers);  // after your own hooks: it chains them
  dsd::run(layers, schedule, thresholds, cb);
  dsd::io::RunRecord run = recorder.record("dsd", schedule.plan(), thresholds);
  run.metadata = {{"seed", "1"}};
  dsd::io::write_report("run.html", {run}, {.title = "fc1, D -> S -> D"});
  // example-end guide-report
  std::filesystem::current_path(cwd);
  CHECK(recorder.boundaries().size() == 6);
  CHECK(run.schedule[1].before == "prune: 0.5 of each layer");
  CHECK(run.boundaries[2].layers[0].pruned == 200);  // S opening: half of fc1 pruned
  CHECK(std::filesystem::file_size(dir.path / "run.html") > 1000);
}
