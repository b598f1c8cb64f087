// Recipe files: the paper's recipes load into the plans their tables give; patterns, scaling,
// fractional epochs; a loaded recipe runs.
#include <doctest/doctest.h>

#include <dsd/dsd.hpp>
#include <dsd/io/recipe.hpp>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

namespace {
dsd::io::Recipe paper(const std::string& name) {
  return dsd::io::read_recipe(std::string(DSD_RECIPES_DIR) + "/" + name + ".json");
}

struct Row {
  dsd::Phase phase;
  int round;
  int epochs;
  std::int64_t steps;
  double lr;
  double sparsity;  // of the phase's prune; -1 when it does not prune
};

void check_plan(const dsd::Plan& plan, const std::vector<Row>& rows) {
  REQUIRE(plan.phases.size() == rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CAPTURE(i);
    const auto& p = plan.phases[i];
    CHECK(p.phase == rows[i].phase);
    CHECK(p.round == rows[i].round);
    CHECK(p.epochs == rows[i].epochs);
    CHECK(p.steps == rows[i].steps);
    CHECK(p.lr == rows[i].lr);
    CHECK(p.prune_before == (rows[i].sparsity >= 0));
    CHECK(p.redense_before == (rows[i].phase == dsd::Phase::redense));
    if (rows[i].sparsity >= 0) {
      const auto* u = std::get_if<dsd::UniformSparsity>(&p.thresholds);
      REQUIRE(u != nullptr);
      CHECK(u->sparsity == rows[i].sparsity);
    } else {
      CHECK(std::holds_alternative<std::monostate>(p.thresholds));
    }
  }
}

template <class P>
std::vector<std::string> excluded(const dsd::PhasePlan& p) {
  return std::get<P>(p.thresholds).exclude;
}

using dsd::Phase;
}  // namespace

TEST_CASE("the paper's recipes load into the plans of its tables") {
  const std::vector<std::string> ds1_layers = {"fc1", "fc2", "fc3", "birnn.forward", "birnn.backward", "fc5", "out"};
  SUBCASE("DeepSpeech 1: two rounds at 50 % then 25 %, five rates") {
    const auto r = paper("deepspeech1-iclr2017");
    CHECK(r.optimizer == "nesterov");
    CHECK(r.source.find("Table 6") != std::string::npos);
    const auto plan = r.plan(ds1_layers);
    check_plan(plan, {{Phase::dense, 1, 50, 0, 8e-4, -1}, {Phase::sparse, 1, 50, 0, 5e-4, 0.5},
                      {Phase::redense, 1, 50, 0, 3e-4, -1}, {Phase::sparse, 2, 50, 0, 1e-4, 0.25},
                      {Phase::redense, 2, 50, 0, 3e-5, -1}});
    CHECK(plan.total_units() == 250);
    // --scale-epochs 0.1: the same shape, 5 epochs a phase.
    CHECK(r.plan(ds1_layers, 0.1).total_units() == 25);
  }
  SUBCASE("DeepSpeech 2: the convolutions stay dense") {
    const auto plan = paper("deepspeech2-iclr2017").plan({"conv1", "conv2", "rnn1", "fc", "out"});
    check_plan(plan, {{Phase::dense, 1, 20, 0, 3e-4, -1}, {Phase::sparse, 1, 20, 0, 3e-4, 0.5},
                      {Phase::redense, 1, 20, 0, 3e-5, -1}, {Phase::sparse, 2, 20, 0, 3e-5, 0.25},
                      {Phase::redense, 2, 20, 0, 6e-6, -1}});
    CHECK(excluded<dsd::UniformSparsity>(plan.phases[1]) == std::vector<std::string>{"conv1", "conv2"});
  }
  SUBCASE("VGG-16: a sparse phase of 1.25 epochs, in steps of the user's epoch") {
    const auto r = paper("vgg16-iclr2017");
    const std::vector<std::string> vgg = {"features.0.weight", "features.2.weight", "classifier.0.weight"};
    CHECK_THROWS_WITH_AS((void)r.plan(vgg), doctest::Contains("phases[0].epochs 1.25 is a fraction"),
                         dsd::error);
    const auto plan = r.plan(vgg, 1.0, 5005);  // ImageNet at batch 256
    check_plan(plan, {{Phase::sparse, 1, 0, 6256, 1e-4, 0.3}, {Phase::redense, 1, 18, 0, 1e-5, -1}});
    CHECK(plan.steps_per_epoch == 5005);
    CHECK(plan.units(0) == 2);  // 5005 + 1251 steps
    CHECK(excluded<dsd::UniformSparsity>(plan.phases[0]) == std::vector<std::string>{"features.0.weight"});
    const auto v1 = paper("vgg16-arxiv-v1").plan(vgg, 1.0, 5005);
    CHECK(std::get<dsd::UniformSparsity>(v1.phases[0].thresholds).sparsity == 0.35);
  }
  SUBCASE("GoogLeNet, ResNet-18/50, NeuralTalk, SqueezeNet") {
    check_plan(paper("googlenet-iclr2017").plan({"conv1.conv.weight", "conv2.conv.weight"}),
               {{Phase::sparse, 1, 11, 0, 1e-3, 0.3}, {Phase::redense, 1, 22, 0, 1e-4, -1}});
    for (const char* net : {"resnet18-iclr2017", "resnet50-iclr2017"})
      check_plan(paper(net).plan({"conv1.weight", "layer1.0.conv1.weight", "fc.weight"}),
                 {{Phase::sparse, 1, 45, 0, 1e-2, 0.3}, {Phase::redense, 1, 45, 0, 1e-3, -1}});
    const auto talk = paper("neuraltalk-iclr2017").plan({"We", "lstm.WLSTM", "Ws", "Wd"});
    check_plan(talk, {{Phase::sparse, 1, 10, 0, 1e-3, 0.8}, {Phase::redense, 1, 6, 0, 1e-4, -1}});
    CHECK(excluded<dsd::UniformSparsity>(talk.phases[0]) == std::vector<std::string>{"Ws"});
    check_plan(paper("squeezenet-iclr2017").plan({"features.0.weight"}),
               {{Phase::redense, 1, 20, 0, 1e-4, -1}});
  }
  SUBCASE("every file under recipes/ loads and names its source") {
    int files = 0;
    for (const auto& f : std::filesystem::directory_iterator(DSD_RECIPES_DIR)) {
      CAPTURE(f.path().string());
      const auto r = dsd::io::read_recipe(f.path().string());
      CHECK(!r.source.empty());
      CHECK(r.name == f.path().stem().string());
      ++files;
    }
    CHECK(files == 9);
  }
}

TEST_CASE("recipe patterns, per-layer and global prunes, and a recipe that runs") {
  const auto r = dsd::io::parse_recipe(R"({
    "name": "mine", "source": "a test", "exclude": ["*.bias*", "embed"],
    "phases": [
      {"kind": "dense", "epochs": 1, "lr": 0.1, "decay": {"kind": "step", "gamma": 0.5, "every": 1}},
      {"kind": "sparse", "epochs": 1, "lr": 0.01, "prune": {"layers": {"fc?": 0.5, "out": 0.25}, "fallback": 0.1}},
      {"kind": "redense", "epochs": 1, "lr": 0.001},
      {"kind": "sparse", "steps": 3, "lr": 0.001, "prune": {"global": 0.75}, "round": 7}
    ], "steps_per_epoch": 2})",
                                        "inline");
  const std::vector<std::string> names = {"embed", "fc1", "fc2", "out", "x.bias1"};
  const auto plan = r.plan(names);
  CHECK(plan.phases[0].decay.kind == dsd::Decay::Kind::step);
  CHECK(plan.phases[0].decay.gamma == 0.5);
  const auto& by_name = std::get<dsd::LayerSparsity>(plan.phases[1].thresholds);
  CHECK(by_name.of("fc1") == 0.5);
  CHECK(by_name.of("fc2") == 0.5);
  CHECK(by_name.of("out") == 0.25);
  CHECK(by_name.of("embed") == 0.0);  // excluded
  CHECK(by_name.of("x.bias1") == 0.0);
  const auto& global = std::get<dsd::GlobalSparsity>(plan.phases[3].thresholds);
  CHECK(global.sparsity == 0.75);
  CHECK(global.exclude == std::vector<std::string>{"x.bias1", "embed"});
  CHECK(plan.phases[3].steps == 3);
  CHECK(plan.phases[3].round == 7);
  CHECK(plan.phases[1].round == 1);
  CHECK(!dsd::io::detail::glob_match("layer?.conv1.weight", "layer1.0.conv1.weight"));
  CHECK(dsd::io::detail::glob_match("layer*.conv?.weight", "layer1.conv2.weight"));
  CHECK(dsd::io::detail::glob_match("*", ""));
  CHECK(!dsd::io::detail::glob_match("a", ""));

  // The plan runs: per-layer counts in round 1, the global count over the non-excluded in round 2.
  std::vector<float> e(10, 1.0f), f1(100), f2(100), o(40), b(4, 1.0f);
  for (std::size_t i = 0; i < 100; ++i) f1[i] = f2[i] = float(i + 1);
  for (std::size_t i = 0; i < 40; ++i) o[i] = float(i + 1);
  dsd::Masked le(e, "embed"), l1(f1, "fc1"), l2(f2, "fc2"), lo(o, "out"), lb(b, "x.bias1");
  dsd::Callbacks cb;
  cb.set_lr = dsd::lr_from_context;
  std::vector<double> lrs;
  std::vector<std::size_t> kept;
  cb.train_epoch = [&](const dsd::EpochContext& c) { lrs.push_back(c.lr); return 0.0; };
  cb.train_steps = [&](const dsd::EpochContext& c) { lrs.push_back(c.lr); return double(c.steps); };
  cb.evaluate = [] { return 0.0; };
  const auto report = dsd::run(dsd::layers(le, l1, l2, lo, lb), plan, dsd::UniformSparsity{}, cb);
  CHECK(report.phases[1].layers[1].kept == 50);
  CHECK(report.phases[1].layers[3].kept == 30);
  CHECK(report.phases[1].layers[0].kept == 10);
  CHECK(report.phases[3].layers[1].kept + report.phases[3].layers[2].kept +
            report.phases[3].layers[3].kept == 60);  // 240 prunable, 75 % pruned
  CHECK(report.phases[3].layers[0].kept == 10);
  CHECK(report.phases[3].steps == 3);
  CHECK(lrs.size() == 5);  // 1 + 1 + 1 epochs, then 3 steps in units of 2 and 1
}

namespace {
std::string refusal(const std::string& text) {
  try {
    (void)dsd::io::parse_recipe(text, "r.json");
  } catch (const dsd::error& e) {
    return e.what();
  }
  return "(accepted)";
}
}  // namespace

TEST_CASE("a recipe's per-layer entries apply in file order; a key twice, a lost length, 1e3 steps") {
  // "conv*" first, then the specific "conv1.weight": the file's order, a later entry wins, whatever
  // the keys' alphabetical order ("conv*" sorts before "conv1.weight", "z*" after "a").
  const auto r = dsd::io::parse_recipe(R"({"name": "n", "source": "s", "phases": [
      {"kind": "sparse", "epochs": 1, "lr": 0.1,
       "prune": {"layers": {"z*": 0.5, "conv*": 0.3, "conv1.weight": 0.0, "zeta": 0.25}}}]})",
                                       "r.json");
  const auto plan = r.plan({"conv1.weight", "conv2.weight", "zeta", "zz"});
  const auto& by_name = std::get<dsd::LayerSparsity>(plan.phases[0].thresholds);
  CHECK(by_name.of("conv1.weight") == 0.0);
  CHECK(by_name.of("conv2.weight") == 0.3);
  CHECK(by_name.of("zeta") == 0.25);
  CHECK(by_name.of("zz") == 0.5);

  CHECK(refusal(R"({"name": "n", "source": "s", "phases": [
      {"kind": "dense", "epochs": 1, "lr": 0.1, "lr": 0.2}]})") ==
        R"(dsd: recipe "r.json": the key "lr" appears twice in one object)");
  CHECK(refusal(R"({"name": "n", "name": "m", "source": "s", "phases": []})") ==
        R"(dsd: recipe "r.json": the key "name" appears twice in one object)");
  // The same key in two different objects is no duplicate.
  CHECK(refusal(R"({"name": "n", "source": "s", "phases": [
      {"kind": "dense", "epochs": 1, "lr": 0.1}, {"kind": "dense", "epochs": 1, "lr": 0.1}]})") ==
        "(accepted)");

  const auto steps = dsd::io::parse_recipe(R"({"name": "n", "source": "s", "steps_per_epoch": 1e2,
      "phases": [{"kind": "dense", "steps": 1e3, "lr": 0.1}]})",
                                           "r.json");
  CHECK(steps.plan({}).phases[0].steps == 1000);
  CHECK(steps.steps_per_epoch == 100);
  CHECK(refusal(R"({"name": "n", "source": "s", "steps_per_epoch": 10,
      "phases": [{"kind": "dense", "steps": 2.5, "lr": 0.1}]})") ==
        R"(dsd: recipe "r.json": phases[0].steps must be a positive integer, not 2.5)");

  // Scaled past what a run holds: refused, never capped.
  const auto shape = dsd::io::parse_recipe(R"({"name": "n", "source": "s", "steps_per_epoch": 10,
      "phases": [{"kind": "dense", "epochs": 50, "lr": 0.1}, {"kind": "dense", "steps": 1000, "lr": 0.1}]})",
                                           "r.json");
  CHECK(shape.plan({}, 1000.0).phases[0].epochs == 50000);
  CHECK_THROWS_WITH_AS((void)shape.plan({}, 1e5),
                       R"(dsd: recipe "r.json": phases[0] is 5000000 epochs at scale_epochs 100000, more than 1000000)",
                       dsd::error);
  CHECK_THROWS_WITH_AS((void)shape.plan({}, 1e13),
                       R"(dsd: recipe "r.json": phases[0] is 5e+14 epochs at scale_epochs 1e+13, more than 1000000)",
                       dsd::error);

  // A directory is named as one, not as bad JSON.
  const auto dir = std::filesystem::temp_directory_path();
  CHECK_THROWS_WITH_AS((void)dsd::io::read_recipe(dir.string()),
                       ("dsd: recipe \"" + dir.string() + "\" is a directory, not a recipe file").c_str(),
                       dsd::error);
}

TEST_CASE("an excluded layer stays untouched under a per-layer prune; a huge object is refused") {
  const auto r = dsd::io::parse_recipe(R"({"name": "n", "source": "s", "exclude": ["fc1"], "phases": [
      {"kind": "sparse", "epochs": 1, "lr": 0.1, "prune": {"layers": {"fc*": 0.5}}}]})",
                                       "r.json");
  const auto plan = r.plan({"fc1", "fc2"});
  const auto& by_name = std::get<dsd::LayerSparsity>(plan.phases[0].thresholds);
  CHECK(by_name.exclude == std::vector<std::string>{"fc1"});
  std::vector<float> f1 = {1, 2, 3, std::nanf("")}, f2 = {1, 2, 3, 4};
  dsd::Masked l1(f1, "fc1"), l2(f2, "fc2");
  dsd::BitMask kept_two(4, true);
  kept_two.set(0, false), kept_two.set(1, false);
  l1.set_mask(kept_two, 2.0);
  const auto stats = dsd::prune(dsd::layers(l1, l2), by_name);  // the NaN in fc1 blocks nothing
  CHECK(l1.mask() == kept_two);  // its own mask, not one pruned at 0
  CHECK(stats[1].kept == 2);

  std::string many = R"({"name": "n", "source": "s", "phases": [], "note": {)";
  for (int i = 0; i < 1100; ++i) many += (i ? ", " : "") + ("\"k" + std::to_string(i) + "\": 0");
  many += "}}";
  CHECK(refusal(many) == R"(dsd: recipe "r.json": an object has more than 1024 keys)");
  // The plan's own limits, with the file named.
  const auto units = dsd::io::parse_recipe(R"({"name": "n", "source": "s", "steps_per_epoch": 1,
      "phases": [{"kind": "dense", "steps": 8000000000000000, "lr": 0.1}]})",
                                           "r.json");
  CHECK_THROWS_WITH_AS((void)units.plan({}),
                       R"(dsd: recipe "r.json": phase 0 (dense): 8000000000000000 steps are too many units of 1)",
                       dsd::error);
}
