#include <doctest/doctest.h>

#include <dsd/dsd.hpp>
#include <limits>
#include <span>
#include <vector>

TEST_CASE("Masked views the user's storage and never copies it") {
  std::vector<float> w = {1, -2, 3, -4};
  dsd::Masked layer(w, "fc1");
  CHECK(layer.weights().data() == w.data());
  CHECK(layer.size() == 4);
  CHECK(layer.name() == "fc1");
  CHECK(layer.shape() == dsd::Shape{1, 4});
  w[0] = 10;  // the user's writes are visible through the wrapper
  CHECK(layer.weights()[0] == 10);

  float raw[6] = {1, 2, 3, 4, 5, 6};
  dsd::Masked<dsd::raw_tensor<float>> from_raw(dsd::raw_tensor<float>{raw, 6, {2, 3}}, "raw");
  CHECK(from_raw.weights().data() == raw);
  CHECK(from_raw.shape() == dsd::Shape{2, 3});
  dsd::Masked from_span(std::span<float>(raw, 6));
  CHECK(from_span.weights().data() == raw);
}

TEST_CASE("duplicates share the weights and own their mask and state") {
  std::vector<double> w = {1, -2, 3, -4};
  dsd::Masked a(w, "fc");
  auto b = a.duplicate();
  dsd::prune(b, 0.5);
  CHECK(a.mask().count() == 4);
  CHECK(b.mask().count() == 2);
  CHECK(w == std::vector<double>{0, 0, 3, -4});  // same storage
  a = b.duplicate();
  CHECK(a.mask() == b.mask());
}

TEST_CASE("set_mask installs, enforces and validates a mask") {
  std::vector<float> w = {1, 2, 3, 4, 5};
  dsd::Masked<std::vector<float>, dsd::ByteMask> layer(w, "fc");
  dsd::ByteMask m(5, true);
  m.set(1, false);
  m.set(4, false);
  layer.set_mask(m, 2.0);
  CHECK(w == std::vector<float>{1, 0, 3, 4, 0});
  CHECK(layer.stats().kept == 3);
  CHECK(layer.stats().sparsity == doctest::Approx(0.4));
  CHECK(layer.threshold() == 2.0);
  CHECK_THROWS_WITH_AS(layer.set_mask(dsd::ByteMask(4, true)),
                       "dsd: mask of 4 entries for layer \"fc\" of 5 weights", dsd::error);
}

TEST_CASE("a tensor resized after wrapping is reported, not overrun") {
  std::vector<float> w(8, 1.0f);
  dsd::Masked layer(w, "fc3");
  w.resize(6);
  try {
    layer.enforce();
    FAIL("expected dsd::error");
  } catch (const dsd::error& e) {
    CHECK(e.code() == dsd::errc::size_mismatch);
    CHECK(std::string(e.what()) ==
          "dsd: layer \"fc3\" has 6 weights but its mask has 8 entries; was the tensor resized "
          "after it was wrapped?");
  }
}

TEST_CASE("an owning tensor can be given its matrix shape") {
  std::vector<float> w(12, 1.0f);
  dsd::Masked layer(w, "fc", dsd::Shape{3, 4});
  CHECK(layer.shape() == dsd::Shape{3, 4});
  CHECK(dsd::to_csr(layer.mask(), layer.shape()).row_ptr.size() == 4);
  CHECK_THROWS_WITH_AS(dsd::Masked(w, "fc", dsd::Shape{5, 4}),
                       "dsd: shape 5x4 of layer \"fc\" holds 20 elements but the tensor has 12",
                       dsd::error);
}

TEST_CASE("empty tensors cannot be wrapped") {
  std::vector<float> empty;
  CHECK_THROWS_WITH_AS(dsd::Masked(empty, "bias"),
                       "dsd: cannot wrap layer \"bias\": it has no weights", dsd::error);
}

TEST_CASE("layer collections: tuples of mixed types and vectors of one type") {
  std::vector<float> a = {1, 2, 3, 4};
  std::vector<double> b = {4, 3, 2, 1, 0, 5};
  dsd::Masked la(a, "a");
  dsd::Masked lb(b, "b");
  auto net = dsd::layers(la, lb);
  CHECK(dsd::layer_count(net) == 2);
  const auto stats = dsd::prune(net, dsd::UniformSparsity{.sparsity = 0.5});
  CHECK(stats.size() == 2);
  CHECK(stats[0].kept == 2);
  CHECK(stats[1].kept == 3);
  CHECK(b == std::vector<double>{4, 3, 0, 0, 0, 5});
  dsd::redense(net);
  CHECK(la.mask().count() == 4);
  CHECK(lb.mask().count() == 6);

  std::vector<std::vector<float>> storage(3, std::vector<float>{3, 1, 2});
  std::vector<dsd::Masked<std::vector<float>>> many;
  for (auto& s : storage) many.emplace_back(s, "l" + std::to_string(many.size()));
  dsd::prune(many, dsd::UniformSparsity{.sparsity = 0.34, .exclude = {"l1"}});
  CHECK(storage[0] == std::vector<float>{3, 0, 2});
  CHECK(storage[1] == std::vector<float>{3, 1, 2});
  CHECK(dsd::layer_stats(many)[2].kept == 2);
}

TEST_CASE("views take a shape; raw_tensor dims that do not hold its count are an error") {
  std::vector<float> w(12, 1.0f);
  dsd::Masked<std::span<float>> s(std::span<float>(w), "fc", dsd::Shape{3, 4});
  CHECK(s.shape() == dsd::Shape{3, 4});
  CHECK_THROWS_AS((dsd::Masked<std::span<float>>(std::span<float>(w), "fc", dsd::Shape{5, 4})), dsd::error);
  dsd::Masked<dsd::raw_tensor<float>> r(dsd::raw_tensor<float>{w.data(), 12, {2, 6}}, "r");
  CHECK(r.shape() == dsd::Shape{2, 6});
  dsd::Masked<dsd::raw_tensor<float>> flat(dsd::raw_tensor<float>{w.data(), 12}, "flat");
  CHECK(flat.shape() == dsd::Shape{1, 12});
  CHECK_THROWS_WITH_AS((dsd::Masked<dsd::raw_tensor<float>>(dsd::raw_tensor<float>{w.data(), 12, {5, 5}}, "bad")),
                       "dsd: shape 5x5 of layer \"bad\" holds 25 elements but the tensor has 12", dsd::error);
}

TEST_CASE("Masked is move-only; duplicate() is the named way to a second wrapper") {
  static_assert(!std::is_copy_constructible_v<dsd::Masked<std::vector<float>>>);
  static_assert(!std::is_copy_assignable_v<dsd::Masked<std::vector<float>>>);
  static_assert(std::is_nothrow_move_constructible_v<dsd::Masked<std::vector<float>>>);
  std::vector<float> w = {1, -2, 3, -4};
  dsd::Masked a(w, "fc");
  dsd::prune(a, 0.5);
  dsd::Masked b = a.duplicate();  // shares the weights, copies the mask
  CHECK(b.mask() == a.mask());
  CHECK(b.weights().data() == a.weights().data());
  dsd::Masked moved = std::move(b);
  CHECK(moved.mask().count() == 2);
}

TEST_CASE("restore refuses optimizer state or a threshold that does not fit, touching nothing") {
  std::vector<float> w{1, 2, 3, 4};
  dsd::Masked layer(w, "fc");
  auto snap = dsd::snapshot(layer);
  snap.weights = {5, 6, 7, 8};
  snap.state.first.assign(3, 0.5f);  // one short
  CHECK_THROWS_WITH_AS(dsd::restore(layer, snap),
                       "dsd: snapshot of layer \"fc\" holds optimizer state of 3 entries; the layer has 4",
                       dsd::error);
  snap.state.first.assign(4, 0.5f);
  snap.threshold = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(dsd::restore(layer, snap), dsd::error);
  CHECK(w == std::vector<float>{1, 2, 3, 4});
  CHECK(layer.state().first.empty());
  snap.threshold = 0.0;
  dsd::restore(layer, snap);
  CHECK(layer.state().first == std::vector<float>(4, 0.5f));
}
