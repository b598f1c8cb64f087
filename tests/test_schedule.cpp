#include <doctest/doctest.h>

#include <dsd/dsd.hpp>
#include <limits>
#include <sstream>
#include <span>
#include <string_view>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {
struct Recorder {
  std::vector<std::string> calls;
  std::vector<double> lrs;
  std::vector<dsd::Phase> phases;
  std::vector<std::size_t> kept;

  template <class L>
  dsd::Callbacks callbacks(L& layer) {
    dsd::Callbacks cb;
    cb.set_lr = dsd::lr_from_context;  // records ctx.lr; no optimizer to bind
    cb.train_epoch = [this, &layer](const dsd::EpochContext& c) {
      calls.push_back("train " + std::string(to_string(c.phase)) + " " + std::to_string(c.epoch));
      lrs.push_back(c.lr);
      phases.push_back(c.phase);
      kept.push_back(layer.mask().count());
      return 0.5;
    };
    cb.evaluate = [this] {
      calls.push_back("evaluate");
      return 0.75;
    };
    cb.before_phase = [this](const dsd::EpochContext& c) {
      calls.push_back("before_phase " + std::string(to_string(c.phase)));
    };
    cb.after_phase = [this](const dsd::EpochContext& c, const dsd::PhaseReport&) {
      calls.push_back("after_phase " + std::string(to_string(c.phase)));
    };
    cb.before_epoch = [this](const dsd::EpochContext&) { calls.push_back("before_epoch"); };
    cb.after_epoch = [this](const dsd::EpochContext&, double loss, double acc) {
      calls.push_back("after_epoch " + std::to_string(loss).substr(0, 3) + " " +
                      std::to_string(acc).substr(0, 4));
    };
    return cb;
  }
};
}  // namespace

TEST_CASE("the phase loop calls the user's callables in the documented order") {
  std::vector<float> w = {1, 2, 3, 4};
  dsd::Masked layer(w, "fc");
  Recorder rec;
  std::ostringstream progress;
  auto cb = rec.callbacks(layer);
  cb.progress = &progress;
  const auto report = dsd::run(
      dsd::layers(layer), {.dense_epochs = 1, .sparse_epochs = 1, .redense_epochs = 1, .lr = 0.1},
      dsd::UniformSparsity{.sparsity = 0.5}, cb);
  const std::vector<std::string> expected = {"before_phase dense",
                                             "evaluate",
                                             "before_epoch",
                                             "train dense 0",
                                             "evaluate",
                                             "after_epoch 0.5 0.75",
                                             "after_phase dense",
                                             "before_phase sparse",
                                             "evaluate",
                                             "before_epoch",
                                             "train sparse 0",
                                             "evaluate",
                                             "after_epoch 0.5 0.75",
                                             "after_phase sparse",
                                             "before_phase re-dense",
                                             "evaluate",
                                             "before_epoch",
                                             "train re-dense 0",
                                             "evaluate",
                                             "after_epoch 0.5 0.75",
                                             "after_phase re-dense"};
  CHECK(rec.calls == expected);
  CHECK(rec.kept == std::vector<std::size_t>{4, 2, 4});  // pruned before S, dense again before R
  CHECK(rec.lrs[0] == 0.1);
  CHECK(rec.lrs[1] == 0.1);
  CHECK(rec.lrs[2] == doctest::Approx(0.01));
  REQUIRE(report.phases.size() == 3);
  CHECK(report.phases[1].layers[0].kept == 2);
  CHECK(report.phases[1].layers[0].threshold == 2.0);
  CHECK(report.phases[1].layers[0].changed == 2);  // pruning flipped two mask bits
  CHECK(report.phases[2].layers[0].changed == 2);  // re-dense flipped them back
  CHECK(report.phases[0].layers[0].changed == 0);
  CHECK(report.final_accuracy() == 0.75);
  CHECK(progress.str().find("[sparse   r1] epoch   1/1   (total   2/3)") != std::string::npos);
  std::ostringstream table;
  dsd::print_report(table, report);
  CHECK(table.str().find("sparse") != std::string::npos);
  CHECK(table.str().find("fc") != std::string::npos);
}

TEST_CASE("schedules: rounds, fused D+S, sparse from scratch and the dense baseline") {
  SUBCASE("two DSD rounds divide the learning rate again") {
    const auto plan =
        dsd::Schedule{
            .dense_epochs = 2, .sparse_epochs = 3, .redense_epochs = 4, .lr = 1.0, .rounds = 2}
            .plan()
            .phases;
    REQUIRE(plan.size() == 5);
    CHECK(plan[0].phase == dsd::Phase::dense);
    CHECK(plan[1].phase == dsd::Phase::sparse);
    CHECK(plan[1].prune_before);
    CHECK(plan[2].redense_before);
    CHECK(plan[2].lr == doctest::Approx(0.1));
    CHECK(plan[3].round == 2);
    CHECK(plan[3].lr == doctest::Approx(0.1));
    CHECK(plan[4].lr == doctest::Approx(0.01));
    CHECK(dsd::Schedule{.dense_epochs = 2, .sparse_epochs = 3, .redense_epochs = 4, .rounds = 2}
              .total_epochs() == 16);
  }
  SUBCASE("the paper's protocol: a trained model continued sparse at lr/10, re-dense at lr/100") {
    // GoogLeNet in the paper: dense at 1e-2 (here loaded, 0 epochs), 11 sparse at 1e-3, 22
    // re-dense at 1e-4; rounds = 2 scales both by redense_lr_scale once more.
    const dsd::Schedule paper{.dense_epochs = 0, .sparse_epochs = 11, .redense_epochs = 22,
                              .lr = 1e-2, .redense_lr_scale = 0.01, .sparse_lr_scale = 0.1,
                              .rounds = 2};
    const auto plan = paper.plan().phases;
    REQUIRE(plan.size() == 4);
    CHECK(plan[0].phase == dsd::Phase::sparse);
    CHECK(plan[0].prune_before);
    CHECK(plan[0].epochs == 11);
    CHECK(plan[0].lr == doctest::Approx(1e-3));
    CHECK(plan[1].lr == doctest::Approx(1e-4));
    CHECK(plan[2].lr == doctest::Approx(1e-5));
    CHECK(plan[3].lr == doctest::Approx(1e-6));
    auto control = paper;
    control.prune = false;  // the fair control: same epochs, same rates, no mask
    const auto c = control.plan().phases;
    CHECK(c[0].phase == dsd::Phase::dense);
    CHECK(!c[0].prune_before);
    CHECK(c[0].lr == plan[0].lr);
    CHECK(c[1].lr == plan[1].lr);
    CHECK_THROWS_WITH_AS(
        ((void)dsd::Schedule{.dense_epochs = 1, .sparse_lr_scale = 0}.plan()),
        "dsd: sparse_lr_scale 0 must be finite and > 0", dsd::error);
  }
  SUBCASE("fused D+S prunes mid-way and keeps the total") {
    const auto plan =
        dsd::Schedule{
            .dense_epochs = 8, .sparse_epochs = 2, .redense_epochs = 3, .prune_at_epoch = 2}
            .plan()
            .phases;
    REQUIRE(plan.size() == 3);
    CHECK(plan[0].epochs == 2);
    CHECK(plan[1].epochs == 8);
    CHECK(plan[2].epochs == 3);
  }
  SUBCASE("sparse from scratch prunes before any training") {
    const auto plan =
        dsd::Schedule{
            .dense_epochs = 4, .sparse_epochs = 2, .redense_epochs = 0, .prune_at_epoch = 0}
            .plan()
            .phases;
    REQUIRE(plan.size() == 2);
    CHECK(plan[0].phase == dsd::Phase::sparse);
    CHECK(plan[0].prune_before);
    CHECK(plan[0].epochs == 6);
    CHECK(plan[1].epochs == 0);
  }
  SUBCASE("the dense baseline runs the same epochs and lr drop without masks") {
    std::vector<float> w = {1, 2, 3, 4};
    dsd::Masked layer(w, "fc");
    Recorder rec;
    dsd::run(
        dsd::layers(layer),
        {.dense_epochs = 2, .sparse_epochs = 1, .redense_epochs = 2, .lr = 1.0, .prune = false},
        dsd::UniformSparsity{.sparsity = 0.5}, rec.callbacks(layer));
    CHECK(rec.kept == std::vector<std::size_t>(5, 4));
    CHECK(rec.phases == std::vector<dsd::Phase>(5, dsd::Phase::dense));
    CHECK(rec.lrs[2] == 1.0);
    CHECK(rec.lrs[3] == doctest::Approx(0.1));
  }
}

TEST_CASE("the phase loop drives a real sparse phase: the mask holds through training") {
  std::vector<double> w = {0.5, -1.5, 2.0, 0.1, -0.2, 3.0};
  dsd::Masked layer(w, "fc");
  dsd::MomentumSgd opt{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01};
  dsd::Callbacks cb;
  cb.set_lr = dsd::lr_of(opt);
  bool held = true;
  cb.train_epoch = [&](const dsd::EpochContext& ctx) {
    for (int i = 0; i < 10; ++i) opt.step(layer, std::vector<double>(6, -1.0));
    if (ctx.phase == dsd::Phase::sparse) held &= w[0] == 0 && w[3] == 0 && w[4] == 0;
    return 0.0;
  };
  cb.evaluate = [] { return 1.0; };
  dsd::run(dsd::layers(layer), {.dense_epochs = 0, .sparse_epochs = 3, .redense_epochs = 1},
           dsd::UniformSparsity{.sparsity = 0.5}, cb);
  CHECK(held);
  CHECK(w[0] != 0.0);  // re-dense brought the pruned weights back
}

TEST_CASE("bad schedules and callbacks are rejected with a reason") {
  std::vector<float> w = {1, 2};
  dsd::Masked layer(w, "fc");
  dsd::Callbacks cb;
  cb.evaluate = [] { return 0.0; };
  cb.set_lr = dsd::lr_from_context;
  CHECK_THROWS_WITH_AS(
      dsd::run(dsd::layers(layer), {.dense_epochs = 1}, dsd::UniformSparsity{}, cb),
      "dsd: run: Callbacks::train_epoch is not set", dsd::error);
  cb.train_epoch = [](const dsd::EpochContext&) { return 0.0; };
  CHECK_THROWS_WITH_AS(dsd::run(dsd::layers(layer), dsd::Schedule{}, dsd::UniformSparsity{}, cb),
                       "dsd: the schedule has no epochs to train", dsd::error);
  CHECK_THROWS_WITH_AS(((void)dsd::Schedule{.dense_epochs = -1, .sparse_epochs = 2}.plan()),
                       "dsd: epoch counts must be >= 0 (got dense -1, sparse 2, re-dense 0)",
                       dsd::error);
  CHECK_THROWS_WITH_AS(((void)dsd::Schedule{.dense_epochs = 3, .prune_at_epoch = 4}.plan()),
                       "dsd: prune_at_epoch 4 is outside [0, dense_epochs = 3]", dsd::error);
  CHECK_THROWS_WITH_AS(((void)dsd::Schedule{.dense_epochs = 3, .lr = 0}.plan()),
                       "dsd: lr 0 must be finite and > 0", dsd::error);
  CHECK_THROWS_WITH_AS(((void)dsd::Schedule{.dense_epochs = 3, .rounds = 0}.plan()),
                       "dsd: rounds 0 must be >= 1", dsd::error);
  try {
    (void)dsd::Schedule{.dense_epochs = 1, .redense_lr_scale = -1}.plan();
    FAIL("expected dsd::error");
  } catch (const dsd::error& e) {
    CHECK(e.code() == dsd::errc::invalid_schedule);
  }
}

TEST_CASE("run resumes at a position: earlier phases and the entered phase's prune are skipped") {
  std::vector<float> w = {1, 2, 3, 4};
  dsd::Masked layer(w, "fc");
  dsd::prune(layer, 0.5);  // the state a checkpoint taken inside the sparse phase restores
  Recorder rec;
  auto cb = rec.callbacks(layer);
  int first_global = -1;
  cb.before_epoch = [&](const dsd::EpochContext& c) {
    if (first_global < 0) first_global = c.global_epoch;
  };
  const dsd::Schedule s{.dense_epochs = 2, .sparse_epochs = 2, .redense_epochs = 1, .lr = 1.0};
  const auto report = dsd::run(dsd::layers(layer), s, dsd::UniformSparsity{.sparsity = 0.75}, cb,
                               dsd::KeepmaxCut{}, dsd::Position{1, 1});
  CHECK(rec.kept == std::vector<std::size_t>{2, 4});  // not re-pruned to 0.75; re-densed after
  CHECK(rec.phases == std::vector<dsd::Phase>{dsd::Phase::sparse, dsd::Phase::redense});
  CHECK(first_global == 3);
  CHECK(report.phases.size() == 2);
  CHECK(dsd::Position::after({dsd::Phase::sparse, 1, 1, 3, 1.0, 1, 2}) == dsd::Position{2, 0});
  CHECK(dsd::Position::after({dsd::Phase::sparse, 1, 0, 2, 1.0, 1, 2}) == dsd::Position{1, 1});
  CHECK_THROWS_WITH_AS(
      dsd::run(dsd::layers(layer), s, dsd::UniformSparsity{}, cb, dsd::KeepmaxCut{},
               dsd::Position{1, 2}),
      "dsd: resume position (phase 1, epoch 2) is not in this schedule of 3 phases", dsd::error);
  // Resuming at the very end runs nothing.
  Recorder none;
  CHECK(dsd::run(dsd::layers(layer), s, dsd::UniformSparsity{}, none.callbacks(layer),
                 dsd::KeepmaxCut{}, dsd::Position{3, 0})
            .phases.empty());
  CHECK(none.calls.empty());
}

TEST_CASE("the schedule owns the learning rate: bound optimizers get each phase's lr") {
  std::vector<float> w = dsd_test::uniform<float>(100, 3);
  dsd::Masked layer(w, "fc");
  dsd::MomentumSgd opt{.lr = 123.0};  // whatever it starts with, run() overwrites it
  dsd::Adam adam{.lr = 7.0};
  std::vector<double> seen_by_step, seen_by_setter;
  dsd::Callbacks cb;
  cb.set_lr = [&, both = dsd::lr_of(opt, adam)](double lr) {
    both(lr);
    seen_by_setter.push_back(lr);
  };
  cb.train_epoch = [&](const dsd::EpochContext& ctx) {
    CHECK(opt.lr == ctx.lr);
    CHECK(adam.lr == ctx.lr);
    seen_by_step.push_back(opt.lr);
    return 0.0;
  };
  cb.evaluate = [] { return 0.0; };
  dsd::run(dsd::layers(layer), {.dense_epochs = 1, .sparse_epochs = 1, .redense_epochs = 2, .lr = 0.5, .rounds = 2},
           dsd::UniformSparsity{0.5}, cb);
  // Round 1: D 0.5, S 0.5, R 0.05 x2; round 2: S 0.05, R 0.005 x2.
  const std::vector<double> want = {0.5, 0.5, 0.05, 0.05, 0.05, 0.005, 0.005};
  REQUIRE(seen_by_step.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) CHECK(seen_by_step[i] == doctest::Approx(want[i]));
  CHECK(seen_by_setter == seen_by_step);

  // Forgetting to route the lr is an error, not a silent full-rate re-dense.
  dsd::Callbacks forgot;
  forgot.train_epoch = [](const dsd::EpochContext&) { return 0.0; };
  forgot.evaluate = [] { return 0.0; };
  CHECK_THROWS_WITH_AS(dsd::run(dsd::layers(layer), {.dense_epochs = 1}, dsd::UniformSparsity{}, forgot),
                       doctest::Contains("the schedule's learning rate reaches no optimizer"), dsd::error);
}

TEST_CASE("resuming inside a sparse phase with masks that were not restored is refused") {
  std::vector<float> a = {1, 2, 3, 4}, b = {5, 6, 7, 8};
  dsd::Masked la(a, "a"), lb(b, "b");
  dsd::prune(la, 0.5);  // a's mask restored; b's not (a checkpoint loaded into a alone)
  Recorder rec;
  const dsd::Schedule s{.dense_epochs = 2, .sparse_epochs = 2, .redense_epochs = 1};
  CHECK_THROWS_WITH_AS(dsd::run(dsd::layers(la, lb), s, dsd::UniformSparsity{.sparsity = 0.5},
                                rec.callbacks(la), dsd::KeepmaxCut{}, dsd::Position{1, 1}),
                       "dsd: run: resuming inside the sparse phase (phase 1, epoch 1) but layer "
                       "\"b\" has no pruned weights; restore its mask (load_checkpoint) before "
                       "resuming, or it trains dense",
                       dsd::error);
  CHECK(rec.calls.empty());
  // an excluded layer is dense by design
  CHECK_NOTHROW(dsd::run(dsd::layers(la, lb), s, dsd::UniformSparsity{.sparsity = 0.5, .exclude = {"b"}},
                         rec.callbacks(la), dsd::KeepmaxCut{}, dsd::Position{1, 1}));
  // a policy that does not say which layers it prunes: at least one layer must be pruned
  dsd::redense(la);
  CHECK_THROWS_WITH_AS(dsd::run(dsd::layers(la, lb), s, dsd::GlobalSparsity{.sparsity = 0.5},
                                rec.callbacks(la), dsd::KeepmaxCut{}, dsd::Position{1, 1}),
                       doctest::Contains("but no layer has a pruned weight"), dsd::error);
}

TEST_CASE("run enforces the masks after every sparse epoch and reports what it had to zero") {
  std::vector<double> w = {0.5, -1.5, 2.0, 0.1, -0.2, 3.0};
  dsd::Masked layer(w, "fc");
  dsd::Callbacks cb;
  cb.set_lr = dsd::lr_from_context;
  std::vector<double> seen_at_eval;
  // A user optimizer that forgets enforce(): every weight moves, pruned ones too.
  cb.train_epoch = [&](const dsd::EpochContext&) {
    for (double& x : w) x += 0.25;
    return 0.0;
  };
  cb.evaluate = [&] {
    seen_at_eval.push_back(w[0]);
    return 1.0;
  };
  std::ostringstream progress;
  cb.progress = &progress;
  const auto report = dsd::run(dsd::layers(layer),
                               {.dense_epochs = 1, .sparse_epochs = 2, .redense_epochs = 1},
                               dsd::UniformSparsity{.sparsity = 0.5}, cb);
  REQUIRE(report.phases.size() == 3);
  const auto& sparse = report.phases[1];
  CHECK(sparse.unmasked == 6);  // 3 pruned weights made nonzero in each of 2 epochs
  CHECK(sparse.weight_sparsity == doctest::Approx(0.5));
  CHECK(sparse.sparsity_measured);
  CHECK(report.phases[0].weight_sparsity == 0.0);
  CHECK(report.phases[0].unmasked == 0);
  CHECK(report.phases[2].unmasked == 0);  // a re-dense phase is not enforced
  // the accuracy after each sparse epoch is the sparse model's
  CHECK(seen_at_eval[3] == 0.0);
  CHECK(seen_at_eval[4] == 0.0);
  CHECK(progress.str().find("dsd: warning: 3 pruned weights were nonzero after a sparse epoch") !=
        std::string::npos);
  std::ostringstream table;
  dsd::print_report(table, report);
  CHECK(table.str().find("sparse        1      2       0.01    1.0000    1.0000   0.5000") !=
        std::string::npos);
}

TEST_CASE("end_sparse: the last round keeps its masks; earlier rounds still re-dense") {
  const dsd::Schedule one{.dense_epochs = 1, .sparse_epochs = 2, .redense_epochs = 0, .end_sparse = true};
  const auto plan = one.plan().phases;
  REQUIRE(plan.size() == 2);
  CHECK(plan.back().phase == dsd::Phase::sparse);
  CHECK(one.total_epochs() == 3);
  const dsd::Schedule two{.dense_epochs = 1, .sparse_epochs = 1, .redense_epochs = 2, .rounds = 2,
                          .end_sparse = true};
  CHECK(two.plan().phases.size() == 4);  // D, S, R, S
  CHECK(two.total_epochs() == 1 + 1 + 2 + 1);
  std::vector<float> w = {1, 2, 3, 4};
  dsd::Masked layer(w, "fc");
  Recorder rec;
  const auto report = dsd::run(dsd::layers(layer), one, dsd::UniformSparsity{.sparsity = 0.5},
                               rec.callbacks(layer));
  CHECK(layer.mask().count() == 2);  // ended sparse
  CHECK(report.phases.back().phase == dsd::Phase::sparse);
  // without end_sparse, a re-dense phase of 0 epochs still removes the mask
  const dsd::Schedule zero{.dense_epochs = 1, .sparse_epochs = 2, .redense_epochs = 0};
  dsd::run(dsd::layers(layer), zero, dsd::UniformSparsity{.sparsity = 0.5}, rec.callbacks(layer));
  CHECK(layer.mask().count() == 4);
}

TEST_CASE("resuming a sparse phase whose thresholds prune nothing is not refused") {
  std::vector<float> w(10, 1.0f);
  dsd::Masked layer(w, "fc");
  Recorder rec;
  const dsd::Schedule s{.dense_epochs = 1, .sparse_epochs = 3, .redense_epochs = 1};
  for (const double sparsity : {0.0, 0.04}) {  // 0.04 of 10 rounds to 0
    CHECK_NOTHROW(dsd::run(dsd::layers(layer), s, dsd::UniformSparsity{.sparsity = sparsity},
                           rec.callbacks(layer), dsd::KeepmaxCut{}, dsd::Position{1, 1}));
    CHECK_NOTHROW(dsd::run(dsd::layers(layer), s, dsd::GlobalSparsity{.sparsity = sparsity},
                           rec.callbacks(layer), dsd::KeepmaxCut{}, dsd::Position{1, 1}));
  }
}

TEST_CASE("a schedule too long for an int is refused, not overflowed") {
  CHECK_THROWS_WITH_AS(((void)dsd::Schedule{.sparse_epochs = std::numeric_limits<int>::max() / 2 + 1,
                                            .rounds = 2}
                            .plan()),
                       "dsd: the schedule's 2147483648 epochs exceed 2147483647", dsd::error);
}

namespace {
/// Prunes the most negative weights first: its threshold, the highest pruned score, is signed.
struct MostNegativeFirst {
  static constexpr std::string_view name = "most-negative-first";
  float build_mask(std::span<const float> w, std::size_t prune, dsd::BitMask& mask,
                   const dsd::PruneInfo&) const {
    return dsd::prune_lowest(w.size(), prune, mask, [&](std::size_t i) { return w[i]; });
  }
};
}  // namespace

TEST_CASE("a policy over signed scores may record a negative threshold") {
  std::vector<float> a = {1, 2, 3, 4}, b = {-4, -3, -2, -1};
  dsd::Masked la(a, "a"), lb(b, "b");
  const auto stats = dsd::prune(dsd::layers(la, lb), dsd::UniformSparsity{.sparsity = 0.5}, MostNegativeFirst{});
  CHECK(stats[1].kept == 2);
  CHECK(lb.threshold() == -3.0);
}
