#include <doctest/doctest.h>

#include <cmath>
#include <dsd/dsd.hpp>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "test_util.hpp"

TEST_CASE("sensitivity analysis prunes one layer at a time and restores it exactly") {
  auto a = dsd_test::uniform<float>(100, 1), b = dsd_test::uniform<float>(100, 2);
  const auto a0 = a, b0 = b;
  dsd::Masked la(a, "robust"), lb(b, "fragile");
  dsd::prune(lb, 0.1);  // an existing mask and state must survive the analysis too
  dsd::MomentumSgd{.lr = 0.1}.step(lb, std::vector<float>(100, 1.0f));
  const auto b_before = b;
  const auto lb_mask = lb.mask();
  const auto lb_state = lb.state();
  // A synthetic evaluate: "accuracy" falls with the share of zeroed weights, 10x faster for
  // "fragile".
  const auto evaluate = [&] {
    double za = 0, zb = 0;
    for (std::size_t i = 0; i < 100; ++i) za += a[i] == 0.0f, zb += b[i] == 0.0f;
    return 1.0 - 0.01 * za / 100.0 - 0.1 * zb / 100.0;
  };
  const double candidates[] = {0.2, 0.5, 0.8};
  const auto table = dsd::sensitivity_analysis(dsd::layers(la, lb), candidates, evaluate);
  CHECK(table.baseline == doctest::Approx(1.0 - 0.1 * 0.1));
  REQUIRE(table.points.size() == 6);
  CHECK(table.points[0].layer == "robust");
  CHECK(table.points[2].accuracy == doctest::Approx(table.baseline - 0.01 * 0.8));
  CHECK(table.points[4].accuracy == doctest::Approx(1.0 - 0.1 * 0.5));
  CHECK(a == a0);  // restored bit for bit
  CHECK(b == b_before);
  CHECK(lb.mask() == lb_mask);
  CHECK(lb.state() == lb_state);
  CHECK(la.mask().count() == 100);

  const auto chosen = table.choose(0.02);
  CHECK(chosen.of("robust") == 0.8);
  CHECK(chosen.of("fragile") == 0.2);  // drops 0.01, 0.04, 0.07 beyond baseline
  CHECK(table.choose(0.0).of("fragile") == 0.0);
  std::ostringstream csv;
  table.write_csv(csv);
  CHECK(csv.str().rfind("layer,sparsity,accuracy,drop\nrobust,0.2,", 0) == 0);
  (void)b0;
}

TEST_CASE("choose never skips past a candidate whose drop is too large") {
  dsd::SensitivityTable t{0.9, {{"fc", 0.2, 0.89}, {"fc", 0.4, 0.70}, {"fc", 0.6, 0.895}}};
  CHECK(t.choose(0.05).of("fc") == 0.2);
  CHECK_THROWS_AS((void)t.choose(-1.0), dsd::error);
}

TEST_CASE("sensitivity analysis validates its candidates") {
  std::vector<float> w(10, 1.0f);
  dsd::Masked l(w, "fc");
  const auto eval = [] { return 1.0; };
  const double bad_order[] = {0.5, 0.2}, out_of_range[] = {0.5, 1.0};
  CHECK_THROWS_WITH_AS(
      dsd::sensitivity_analysis(dsd::layers(l), bad_order, eval),
      "dsd: sensitivity_analysis: candidate sparsities must increase (0.5 then 0.2)", dsd::error);
  CHECK_THROWS_WITH_AS(dsd::sensitivity_analysis(dsd::layers(l), out_of_range, eval),
                       "dsd: sparsity 1 is outside [0, 1)", dsd::error);
  CHECK_THROWS_AS(dsd::sensitivity_analysis(dsd::layers(l), std::span<const double>{}, eval),
                  dsd::error);
}

TEST_CASE("sensitivity analysis restores the probed layer when evaluate() throws") {
  auto a = dsd_test::uniform<float>(100, 1), b = dsd_test::uniform<float>(100, 2);
  dsd::Masked la(a, "a"), lb(b, "b");
  dsd::prune(lb, 0.3);
  dsd::MomentumSgd{.lr = 0.1}.step(lb, std::vector<float>(100, 1.0f));
  const auto a0 = a, b0 = b;
  const auto mask0 = lb.mask();
  const auto state0 = lb.state();
  const double threshold0 = lb.threshold();
  const double candidates[] = {0.2, 0.5};
  for (int failing_call : {2, 4}) {  // inside the first layer's probes, then the second's
    int calls = 0;
    CHECK_THROWS_WITH_AS(dsd::sensitivity_analysis(dsd::layers(la, lb), candidates,
                                                   [&]() -> double {
                                                     if (++calls == failing_call)
                                                       throw std::runtime_error("evaluation failed");
                                                     return 0.5;
                                                   }),
                         "evaluation failed", std::runtime_error);
    CHECK(a == a0);
    CHECK(b == b0);
    CHECK(la.mask().count() == 100);
    CHECK(lb.mask() == mask0);
    CHECK(lb.state() == state0);
    CHECK(lb.threshold() == threshold0);
  }
}
