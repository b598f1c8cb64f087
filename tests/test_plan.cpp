// The explicit plan: per-phase rates and thresholds, step-length phases, in-phase decay.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <dsd/dsd.hpp>
#include <numbers>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace {
/// A deterministic "trainer": each step moves every weight by a gradient that depends on the
/// global step index only, so two runs that take the same steps end bitwise equal.
struct StepTrainer {
  std::vector<float> w;
  dsd::Masked<std::vector<float>> layer;
  dsd::MomentumSgd opt{.lr = 1.0, .momentum = 0.9};
  std::int64_t step = 0;  // the user's data iterator: carries on across units
  std::vector<std::int64_t> units;
  std::vector<double> lrs;

  explicit StepTrainer(std::size_t n) : w(n), layer(w, "fc") {
    for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<float>(std::sin(0.37 * double(i) + 1.0));
  }
  void one_step() {
    std::vector<float> g(w.size());
    for (std::size_t i = 0; i < g.size(); ++i)
      g[i] = static_cast<float>(std::cos(0.11 * double(i) + 0.07 * double(step)));
    opt.step(layer, g);
    ++step;
  }
  dsd::Callbacks callbacks() {
    dsd::Callbacks cb;
    cb.set_lr = dsd::lr_of(opt);
    cb.train_epoch = [this](const dsd::EpochContext& c) {
      for (int s = 0; s < 8; ++s) one_step();
      units.push_back(8);
      lrs.push_back(c.lr);
      return 0.0;
    };
    cb.train_steps = [this](const dsd::EpochContext& c) {
      for (std::int64_t s = 0; s < c.steps; ++s) one_step();
      units.push_back(c.steps);
      lrs.push_back(c.lr);
      return 0.0;
    };
    cb.evaluate = [] { return 0.5; };
    return cb;
  }
};

dsd::PhasePlan phase(dsd::Phase kind, int round, int epochs, double lr) {
  dsd::PhasePlan p;
  p.phase = kind, p.round = round, p.epochs = epochs, p.lr = lr;
  p.prune_before = kind == dsd::Phase::sparse;
  p.redense_before = kind == dsd::Phase::redense;
  return p;
}
}  // namespace

TEST_CASE("a two-round plan prunes 50 % then 25 %, each phase at its own rate") {
  // DeepSpeech 1's shape (paper-recipes.md): D 8e-4, S 50 % 5e-4, D 3e-4, S 25 % 1e-4, D 3e-5.
  dsd::Plan plan;
  plan.phases = {phase(dsd::Phase::dense, 1, 2, 8e-4), phase(dsd::Phase::sparse, 1, 2, 5e-4),
                 phase(dsd::Phase::redense, 1, 2, 3e-4), phase(dsd::Phase::sparse, 2, 2, 1e-4),
                 phase(dsd::Phase::redense, 2, 2, 3e-5)};
  plan.phases[1].thresholds = dsd::UniformSparsity{.sparsity = 0.5};
  plan.phases[3].thresholds = dsd::UniformSparsity{.sparsity = 0.25};
  StepTrainer t(1000);
  std::vector<std::size_t> kept;
  auto cb = t.callbacks();
  cb.after_epoch = [&](const dsd::EpochContext&, double, double) { kept.push_back(t.layer.mask().count()); };
  // The run's own thresholds (90 %) are used by no phase: every prune has its own.
  const auto report = dsd::run(dsd::layers(t.layer), plan, dsd::UniformSparsity{.sparsity = 0.9}, cb);
  CHECK(kept == std::vector<std::size_t>{1000, 1000, 500, 500, 1000, 1000, 750, 750, 1000, 1000});
  CHECK(t.lrs == std::vector<double>{8e-4, 8e-4, 5e-4, 5e-4, 3e-4, 3e-4, 1e-4, 1e-4, 3e-5, 3e-5});
  REQUIRE(report.phases.size() == 5);
  CHECK(report.phases[1].layers[0].kept == 500);
  CHECK(report.phases[3].layers[0].kept == 750);
  CHECK(report.phases[3].round == 2);
  // A phase without its own policy prunes at the run's.
  plan.phases[3].thresholds = {};
  kept.clear();
  StepTrainer u(1000);
  cb = u.callbacks();
  cb.after_epoch = [&](const dsd::EpochContext&, double, double) { kept.push_back(u.layer.mask().count()); };
  dsd::run(dsd::layers(u.layer), plan, dsd::UniformSparsity{.sparsity = 0.9}, cb);
  CHECK(kept[6] == 100);
  // Per-layer and global policies per phase, over two layers.
  std::vector<float> a(100), b(300);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = float(i + 1) / 100.0f;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = float(i + 1);
  dsd::Masked la(a, "a"), lb(b, "b");
  dsd::Plan two;
  two.phases = {phase(dsd::Phase::sparse, 1, 1, 0.1), phase(dsd::Phase::sparse, 2, 1, 0.1)};
  two.phases[0].thresholds = dsd::LayerSparsity{.sparsity = {{"a", 0.1}, {"b", 0.2}}};
  two.phases[1].thresholds = dsd::GlobalSparsity{.sparsity = 0.5};
  dsd::Callbacks plain;
  plain.set_lr = dsd::lr_from_context;
  plain.train_epoch = [](const dsd::EpochContext&) { return 0.0; };
  plain.evaluate = [] { return 0.0; };
  const auto r2 = dsd::run(dsd::layers(la, lb), two, dsd::UniformSparsity{}, plain);
  CHECK(r2.phases[0].layers[0].kept == 90);
  CHECK(r2.phases[0].layers[1].kept == 240);
  CHECK(r2.phases[1].layers[0].kept == 0);    // a's weights are all below b's: the global
  CHECK(r2.phases[1].layers[1].kept == 200);  // cut takes a, then b's 100 smallest
}

TEST_CASE("a step-length phase of 1.25 epochs trains exactly that many steps and resumes bitwise") {
  // 8 steps an epoch: dense 1 epoch, sparse 10 steps (1.25 epochs: units of 8 and 2), re-dense 1.
  dsd::Plan plan;
  plan.steps_per_epoch = 8;
  plan.phases = {phase(dsd::Phase::dense, 1, 1, 0.01), phase(dsd::Phase::sparse, 1, 0, 0.001),
                 phase(dsd::Phase::redense, 1, 1, 0.0001)};
  plan.phases[1].steps = 10;
  CHECK(plan.units(1) == 2);
  CHECK(plan.total_units() == 4);
  StepTrainer full(64);
  const auto report = dsd::run(dsd::layers(full.layer), plan, dsd::UniformSparsity{.sparsity = 0.5},
                               full.callbacks());
  CHECK(full.units == std::vector<std::int64_t>{8, 8, 2, 8});
  CHECK(full.step == 26);
  CHECK(report.phases[1].steps == 10);
  CHECK(report.phases[1].epochs == 0);

  // Stopped after the sparse phase's first unit (8 of its 10 steps), then resumed there.
  StepTrainer part(64);
  auto cb = part.callbacks();
  struct Stop {};
  dsd::Position at;
  cb.after_epoch = [&](const dsd::EpochContext& ctx, double, double) {
    if (ctx.phase_index == 1 && ctx.epoch == 0) {
      at = dsd::Position::after(ctx);
      throw Stop{};
    }
  };
  CHECK_THROWS_AS(dsd::run(dsd::layers(part.layer), plan, dsd::UniformSparsity{.sparsity = 0.5}, cb),
                  Stop);
  CHECK(at == dsd::Position{1, 1});
  cb.after_epoch = nullptr;
  dsd::run(dsd::layers(part.layer), plan, dsd::UniformSparsity{.sparsity = 0.5}, cb,
           dsd::KeepmaxCut{}, at);
  CHECK(part.units == std::vector<std::int64_t>{8, 8, 2, 8});
  CHECK(part.w == full.w);  // bitwise
  CHECK(part.layer.mask() == full.layer.mask());

  std::ostringstream table;
  dsd::print_report(table, report);
  CHECK(table.str().find("sparse        1    10s") != std::string::npos);
}

TEST_CASE("in-phase decay gives the documented rate at each epoch") {
  const auto rates = [](dsd::Decay d, int n) {
    std::vector<double> r;
    for (int e = 0; e < n; ++e) r.push_back(d.rate(0.1, e, n));
    return r;
  };
  using K = dsd::Decay::Kind;
  CHECK(rates({}, 3) == std::vector<double>{0.1, 0.1, 0.1});
  const auto step = rates({.kind = K::step, .gamma = 0.5, .every = 2}, 5);
  CHECK(step[0] == 0.1);
  CHECK(step[1] == 0.1);
  CHECK(step[2] == doctest::Approx(0.05).epsilon(1e-15));
  CHECK(step[4] == doctest::Approx(0.025).epsilon(1e-15));
  const auto exp = rates({.kind = K::exponential, .gamma = 0.9}, 3);
  CHECK(exp[2] == doctest::Approx(0.081).epsilon(1e-15));
  const auto cos = rates({.kind = K::cosine, .final_scale = 0.1}, 4);
  CHECK(cos[0] == doctest::Approx(0.1).epsilon(1e-15));
  CHECK(cos[2] == doctest::Approx(0.1 * (0.1 + 0.9 * 0.5)).epsilon(1e-15));  // halfway
  CHECK(cos[1] == doctest::Approx(0.1 * (0.1 + 0.9 * (1 + std::cos(std::numbers::pi / 4)) / 2)));
  const auto poly = rates({.kind = K::polynomial, .power = 2.0}, 4);
  CHECK(poly[1] == doctest::Approx(0.1 * 0.5625).epsilon(1e-15));
  CHECK(poly[3] == doctest::Approx(0.1 * 0.0625).epsilon(1e-15));

  // The loop passes the decayed rate to set_lr for every epoch; the report keeps the phase's lr.
  dsd::Plan plan;
  plan.phases = {phase(dsd::Phase::dense, 1, 4, 0.1)};
  plan.phases[0].decay = {.kind = K::step, .gamma = 0.1, .every = 2};
  StepTrainer t(16);
  const auto report = dsd::run(dsd::layers(t.layer), plan, dsd::UniformSparsity{}, t.callbacks());
  REQUIRE(t.lrs.size() == 4);
  CHECK(t.lrs[1] == 0.1);
  CHECK(t.lrs[2] == doctest::Approx(0.01).epsilon(1e-15));
  CHECK(t.opt.lr == doctest::Approx(0.01).epsilon(1e-15));
  CHECK(report.phases[0].lr == 0.1);
}

TEST_CASE("a malformed plan is refused naming the phase and the field") {
  const auto refuses = [](const dsd::Plan& p, const char* message) {
    CHECK_THROWS_WITH_AS(p.validate(), message, dsd::error);
  };
  dsd::Plan p;
  refuses(p, "dsd: the plan has no phases");
  p.phases = {phase(dsd::Phase::dense, 1, 2, 0.1)};
  CHECK_NOTHROW(p.validate());
  p.phases[0].steps = 5;
  refuses(p, "dsd: phase 0 (dense): a length in epochs (2) or in steps (5), not both");
  p.phases[0].epochs = 0;
  refuses(p, "dsd: phase 0 (dense): a length of 5 steps needs the plan's steps_per_epoch");
  p.steps_per_epoch = -1;
  refuses(p, "dsd: steps_per_epoch -1 must be >= 0");
  p.steps_per_epoch = 4;
  p.phases[0].lr = 0;
  refuses(p, "dsd: phase 0 (dense): lr 0 must be finite and > 0");
  p.phases[0].lr = 0.1;
  p.phases[0].thresholds = dsd::UniformSparsity{.sparsity = 0.5};
  refuses(p, "dsd: phase 0 (dense): has a threshold policy but does not prune");
  p.phases[0].thresholds = {};
  p.phases[0].decay = {.kind = dsd::Decay::Kind::step, .gamma = 0};
  refuses(p, "dsd: phase 0 (dense): decay gamma 0 is outside (0, 1]");
  p.phases[0].decay = {.kind = dsd::Decay::Kind::cosine, .final_scale = 2};
  refuses(p, "dsd: phase 0 (dense): decay final_scale 2 is outside [0, 1]");
  p.phases[0].decay = {};
  p.phases[0].round = 0;
  refuses(p, "dsd: phase 0 (dense): round 0 must be >= 1");
  p.phases[0].round = 1;
  p.phases[0].prune_before = p.phases[0].redense_before = true;
  refuses(p, "dsd: phase 0 (dense): prunes and re-denses before it; a phase does one");
  p.phases[0].prune_before = p.phases[0].redense_before = false;
  p.phases[0].steps = 0;
  refuses(p, "dsd: the plan has no epochs or steps to train");

  // A plan with a step-length phase needs train_steps.
  dsd::Plan s;
  s.steps_per_epoch = 4;
  s.phases = {phase(dsd::Phase::dense, 1, 0, 0.1)};
  s.phases[0].steps = 6;
  StepTrainer t(8);
  auto cb = t.callbacks();
  cb.train_steps = nullptr;
  CHECK_THROWS_WITH_AS(dsd::run(dsd::layers(t.layer), s, dsd::UniformSparsity{}, cb),
                       "dsd: run: the plan has a phase given in steps but Callbacks::train_steps "
                       "is not set",
                       dsd::error);
  CHECK(t.step == 0);
}

TEST_CASE("a plan may start from a pruned model and end sparse") {
  StepTrainer t(100);
  dsd::prune(t.layer, 0.3);  // the user's pruned model (SqueezeNet's recipe starts from one)
  dsd::Plan plan;
  plan.phases = {phase(dsd::Phase::sparse, 1, 1, 0.01)};
  plan.phases[0].prune_before = false;  // keep its mask: no prune
  const auto report = dsd::run(dsd::layers(t.layer), plan, dsd::UniformSparsity{.sparsity = 0.9},
                               t.callbacks());
  CHECK(t.layer.mask().count() == 70);
  CHECK(report.phases[0].weight_sparsity == doctest::Approx(0.3));
}
