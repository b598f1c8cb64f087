// dsd::dist under mpiexec (np = 1..4): every rank checks its slice of each sharded mask against
// the single-process prune of the whole tensors, which every rank also computes (no gathering).
#include <mpi.h>

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <dsd/distributed/checkpoint.hpp>
#include <dsd/distributed/communicator.hpp>
#include <dsd/distributed/mpi.hpp>
#include <dsd/distributed/run.hpp>
#include <dsd/distributed/sharded.hpp>
#include <dsd/distributed/verify.hpp>
#include <dsd/dsd.hpp>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "../test_util.hpp"

namespace {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

/// This rank's [begin, end) of n elements: uneven slices, rank r's share proportional to r + 1,
/// boundaries rounded down to multiples of `align`.
std::pair<std::size_t, std::size_t> slice(std::size_t n, std::size_t align = 1) {
  const auto r = static_cast<std::size_t>(world_rank()), p = static_cast<std::size_t>(world_size());
  const auto bound = [&](std::size_t q) {
    return q == p ? n : n * (q * (q + 1) / 2) / (p * (p + 1) / 2) / align * align;
  };
  return {bound(r), bound(r + 1)};
}

/// Weights with many exact ties: multiples of 1/8, so the threshold falls inside a run of ties.
std::vector<float> tied(std::size_t n, std::uint64_t seed) {
  auto w = dsd_test::uniform<float>(n, seed);
  for (auto& x : w) x = std::round(x * 8.0f) / 8.0f;
  return w;
}

/// A full tensor and this rank's slice of it, both wrapped.
struct Sharded {
  std::vector<float> full, local;
  std::size_t begin, end;
  Sharded(std::vector<float> w, std::size_t align = 1)
      : full(std::move(w)), begin(slice(full.size(), align).first), end(slice(full.size(), align).second) {
    local.assign(full.begin() + static_cast<std::ptrdiff_t>(begin),
                 full.begin() + static_cast<std::ptrdiff_t>(end));
  }
};

/// This rank's slice of the whole layer's mask and weights equals its sharded layer.
template <class L>
void check_slice(const L& whole, const L& shard, const Sharded& s) {
  CAPTURE(whole.name());
  std::size_t mismatches = 0;
  for (std::size_t i = s.begin; i < s.end; ++i)
    mismatches += whole.mask().test(i) != shard.mask().test(i - s.begin);
  CHECK(mismatches == 0);
  CHECK(std::vector<float>(s.full.begin() + static_cast<std::ptrdiff_t>(s.begin),
                           s.full.begin() + static_cast<std::ptrdiff_t>(s.end)) == s.local);
  CHECK(shard.threshold() == whole.threshold());
}

}  // namespace

TEST_CASE("sharded Keepmax-Cut equals the single-process masks, ties at the threshold included") {
  dsd::dist::Mpi comm;
  Sharded a(tied(3001, 1)), b(tied(777, 2));
  dsd::Masked wa(a.full, "a"), wb(b.full, "b");
  dsd::Masked sa(a.local, "a"), sb(b.local, "b");
  const auto whole = dsd::prune(dsd::layers(wa, wb), dsd::UniformSparsity{.sparsity = 0.7});
  const auto sharded = dsd::dist::prune(dsd::layers(sa, sb), dsd::UniformSparsity{.sparsity = 0.7}, comm);
  check_slice(wa, sa, a);
  check_slice(wb, sb, b);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(sharded[i].kept == whole[i].kept);
    CHECK(sharded[i].size == whole[i].size);
  }
}

TEST_CASE("sharded UniformSparsity keeps excluded layers dense and refuses an unknown name") {
  dsd::dist::Mpi comm;
  Sharded a(dsd_test::uniform<float>(3001, 12)), b(dsd_test::uniform<float>(700, 13));
  dsd::Masked wa(a.full, "a"), wb(b.full, "b");
  dsd::Masked sa(a.local, "a"), sb(b.local, "b");
  const dsd::UniformSparsity uniform{.sparsity = 0.4, .exclude = {"b"}};
  dsd::prune(dsd::layers(wa, wb), uniform);
  const auto sharded = dsd::dist::prune(dsd::layers(sa, sb), uniform, comm);
  check_slice(wa, sa, a);
  check_slice(wb, sb, b);
  CHECK(sharded[0].kept == 3001 - 1200);  // round(0.4 * 3001) of the whole tensor, not per shard
  CHECK(sharded[1].kept == 700);
  const auto before = sa.mask();
  CHECK_THROWS_WITH_AS(
      dsd::dist::prune(dsd::layers(sa, sb), dsd::UniformSparsity{.exclude = {"bb"}}, comm),
      doctest::Contains("dist::prune thresholds: no layer named \"bb\""), dsd::error);
  CHECK(sa.mask() == before);
}

TEST_CASE("sharded GlobalSparsity: one threshold over all layers, ties to earlier layers") {
  dsd::dist::Mpi comm;
  Sharded a(tied(2000, 3)), b(tied(1500, 4)), c(dsd_test::uniform<float>(999, 5));
  dsd::Masked wa(a.full, "a"), wb(b.full, "b"), wc(c.full, "c");
  dsd::Masked sa(a.local, "a"), sb(b.local, "b"), sc(c.local, "c");
  const dsd::GlobalSparsity global{.sparsity = 0.6, .exclude = {"c"}};
  dsd::prune(dsd::layers(wa, wb, wc), global);
  dsd::dist::prune(dsd::layers(sa, sb, sc), global, comm);
  check_slice(wa, sa, a);
  check_slice(wb, sb, b);
  check_slice(wc, sc, c);
  CHECK(sc.mask().count() == sc.size());
}

TEST_CASE("sharded Random-Cut is keyed by the global index: the sharding does not change it") {
  dsd::dist::Mpi comm;
  Sharded a(dsd_test::uniform<float>(4096, 6)), b(dsd_test::uniform<float>(1234, 7));
  dsd::Masked wa(a.full, "a"), wb(b.full, "b");
  dsd::Masked sa(a.local, "a"), sb(b.local, "b");
  const dsd::RandomCut cut{.seed = 11};
  dsd::prune(dsd::layers(wa, wb), dsd::LayerSparsity{.sparsity = {{"a", 0.5}, {"b", 0.8}}}, cut);
  dsd::dist::prune(dsd::layers(sa, sb), dsd::LayerSparsity{.sparsity = {{"a", 0.5}, {"b", 0.8}}},
                   comm, cut);
  check_slice(wa, sa, a);
  check_slice(wb, sb, b);
}

TEST_CASE("sharded N:M on shards aligned to M; a misaligned shard fails on every rank") {
  dsd::dist::Mpi comm;
  Sharded a(dsd_test::uniform<float>(64 * 40, 8), 4);
  dsd::Masked wa(a.full, "a", dsd::Shape{64, 40});
  dsd::Masked sa(a.local, "a");
  dsd::prune(dsd::layers(wa), dsd::UniformSparsity{.sparsity = 0.5}, dsd::NMCut<2, 4>{});
  dsd::dist::prune(dsd::layers(sa), dsd::UniformSparsity{.sparsity = 0.5}, comm, dsd::NMCut<2, 4>{});
  check_slice(wa, sa, a);
  if (world_size() > 1) {
    Sharded odd(dsd_test::uniform<float>(64 * 40 + 2, 9));  // boundaries not multiples of 4
    dsd::Masked so(odd.local, "odd");
    const auto before = so.mask();
    CHECK_THROWS_WITH_AS(
        dsd::dist::prune(dsd::layers(so), dsd::UniformSparsity{.sparsity = 0.5}, comm, dsd::NMCut<2, 4>{}),
        doctest::Contains("N:M shards of layer \"odd\" must start and end on multiples of M = 4"),
        dsd::error);
    CHECK(so.mask() == before);
  }
}

TEST_CASE("the exact cut with an empty shard: rank 1 holds nothing") {
  dsd::dist::Mpi comm;
  const auto full = tied(5000, 10);
  const std::size_t p = static_cast<std::size_t>(world_size()), r = static_cast<std::size_t>(world_rank());
  // Rank 1 (when there is one) gets no keys; the others split the tensor evenly.
  std::vector<std::size_t> starts(p + 1, 0);
  const std::size_t holders = p > 1 ? p - 1 : 1;
  for (std::size_t q = 0, h = 0; q < p; ++q) {
    const bool empty = p > 1 && q == 1;
    starts[q + 1] = empty ? starts[q] : full.size() * ++h / holders;
  }
  const std::span<const float> mine(full.data() + starts[r], starts[r + 1] - starts[r]);
  const auto key_at = [&](std::size_t i) { return dsd::detail::magnitude_key(mine[i]); };
  const std::uint64_t k = 3333;
  const auto cut = dsd::dist::cut_lowest<std::uint32_t>(mine.size(), key_at, k, comm);
  dsd::BitMask local(mine.size() == 0 ? 1 : mine.size(), true);
  if (!mine.empty()) dsd::dist::apply_cut(cut, mine.size(), key_at, local, true);
  std::vector<float> copy = full;
  dsd::Masked whole(copy, "t");
  dsd::prune_exactly(whole, k);
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < mine.size(); ++i)
    mismatches += whole.mask().test(starts[r] + i) != local.test(i);
  CHECK(mismatches == 0);
  CHECK(dsd::detail::magnitude_from_key<float>(cut.key) == static_cast<float>(whole.threshold()));
  std::uint64_t pruned[] = {cut.prune_local};
  comm.all_reduce_sum(pruned);
  CHECK(pruned[0] == k);
}

TEST_CASE("a NaN on one rank stops the prune on every rank, naming the global index") {
  dsd::dist::Mpi comm;
  auto w = dsd_test::uniform<float>(1000, 12);
  w[987] = std::nanf("");
  Sharded a(w);
  dsd::Masked sa(a.local, "fc");
  CHECK_THROWS_WITH_AS(dsd::dist::prune(dsd::layers(sa), dsd::UniformSparsity{.sparsity = 0.5}, comm),
                       "dsd: layer \"fc\" has a non-finite weight at global index 987; cannot prune it",
                       dsd::error);
  CHECK(sa.mask().count() == sa.size());
}

TEST_CASE("verify_identical names the layer a rank holds differently; broadcast_masks agrees") {
  dsd::dist::Mpi comm;
  auto a = dsd_test::uniform<float>(500, 13), b = dsd_test::uniform<float>(300, 14);
  dsd::Masked la(a, "a"), lb(b, "b");
  // Rank 0 decides the masks (e.g. from its own validation shard); the others prune nothing yet.
  if (world_rank() == 0) dsd::prune(dsd::layers(la, lb), dsd::UniformSparsity{.sparsity = 0.5});
  dsd::dist::broadcast_masks(dsd::layers(la, lb), comm);
  CHECK(la.mask().count() == 250);
  CHECK_NOTHROW(dsd::dist::verify_identical(dsd::layers(la, lb), comm));
  if (world_size() > 1) {
    if (world_rank() == world_size() - 1) b[7] += 1.0f;  // one rank drifted
    const std::string expected = "dsd: dist::verify_identical: layer \"b\" (layer 1) differs across "
                                 "ranks: 1 of " + std::to_string(world_size()) + " ranks (first: rank " +
                                 std::to_string(world_size() - 1) +
                                 ") hold another mask or other weights than rank 0";
    CHECK_THROWS_WITH_AS(dsd::dist::verify_identical(dsd::layers(la, lb), comm), expected.c_str(),
                         dsd::error);
  }
}

TEST_CASE("a prune exchanges counts, never weights: 8 KiB per float layer") {
  dsd::dist::Mpi mpi;
  dsd::dist::Counting comm(mpi);
  Sharded a(dsd_test::uniform<float>(100000, 15)), b(dsd_test::uniform<float>(3000, 16));
  dsd::Masked sa(a.local, "a"), sb(b.local, "b");
  dsd::dist::prune(dsd::layers(sa, sb), dsd::UniformSparsity{.sparsity = 0.9}, comm);
  // 2 x 8 B layer-list check, 8 B shared-storage agreement, per layer 8 B offset scan, 8 B size,
  // 8 B NaN index, then 4 radix passes of 256 counters and one tie scan: independent of the
  // layers' sizes.
  CHECK(comm.bytes() == 2 * 8 + 8 + 2 * (3 * 8) + 2 * (4 * 256 * 8 + 8));
}

TEST_CASE("checkpoints of a distributed run: replicated and sharded round trips, world size checked") {
  dsd::dist::Mpi comm;
  long id = static_cast<long>(getpid());
  MPI_Bcast(&id, 1, MPI_LONG, 0, MPI_COMM_WORLD);
  const auto dir = std::filesystem::temp_directory_path() / ("dsd_dist_ckpt_" + std::to_string(id));
  if (world_rank() == 0) std::filesystem::create_directories(dir);
  comm.barrier();
  Sharded a(dsd_test::uniform<float>(1000, 17));
  auto rep = dsd_test::uniform<float>(300, 18);
  dsd::Masked sa(a.local, "a"), lr(rep, "r");
  dsd::dist::prune(dsd::layers(sa), dsd::UniformSparsity{.sparsity = 0.5}, comm);
  dsd::prune(lr, 0.4);  // replicated: every rank computes the same mask
  const auto saved_a = a.local, saved_r = rep;
  const dsd::io::LoopState loop{{1, 2}, 3, "rng"};
  dsd::dist::save_checkpoint(dir / "rep.safetensors", dsd::layers(lr), comm, dsd::dist::layout::replicated, loop);
  dsd::dist::save_checkpoint(dir / "shard.safetensors", dsd::layers(sa), comm, dsd::dist::layout::sharded, loop);
  std::fill(a.local.begin(), a.local.end(), 1.0f);
  std::fill(rep.begin(), rep.end(), 1.0f);
  dsd::redense(dsd::layers(sa, lr));
  const auto meta = dsd::dist::load_checkpoint(dir / "rep.safetensors", dsd::layers(lr), comm,
                                               dsd::dist::layout::replicated);
  dsd::dist::load_checkpoint(dir / "shard.safetensors", dsd::layers(sa), comm, dsd::dist::layout::sharded);
  CHECK(meta.at("dist.world_size") == std::to_string(world_size()));
  CHECK(rep == saved_r);
  CHECK(a.local == saved_a);
  CHECK(lr.mask().count() == 180);
  CHECK(dsd::io::read_loop_state(dsd::io::File(dir / "rep.safetensors")) == loop);
  if (world_size() > 1) {  // each rank alone: a job of 1 rank resuming a run of N
    MPI_Comm solo;
    MPI_Comm_split(MPI_COMM_WORLD, world_rank(), 0, &solo);
    {
      dsd::dist::Mpi one(solo);
      CHECK_THROWS_WITH_AS(dsd::dist::load_checkpoint(dir / "rep.safetensors", dsd::layers(lr), one,
                                                      dsd::dist::layout::replicated),
                           doctest::Contains(doctest::String(("was written by " + std::to_string(world_size()) +
                                                              " ranks; this job has 1").c_str())),
                           dsd::error);
      CHECK_THROWS_WITH_AS(dsd::dist::load_checkpoint(dir / "shard.safetensors", dsd::layers(sa), one,
                                                      dsd::dist::layout::sharded),
                           doctest::Contains(doctest::String(("was written by a sharded run of " +
                                                              std::to_string(world_size()) +
                                                              " ranks; this job has 1").c_str())),
                           dsd::error);
    }
    MPI_Comm_free(&solo);
  }
  CHECK_THROWS_WITH_AS(dsd::dist::load_checkpoint(dir / "rep.safetensors", dsd::layers(lr), comm,
                                                  dsd::dist::layout::sharded),
                       doctest::Contains("is not the index of a sharded checkpoint"), dsd::error);
  // the index of a sharded save loaded as replicated: the layout message, not a garbage header
  CHECK_THROWS_WITH_AS(dsd::dist::load_checkpoint(dir / "shard.safetensors", dsd::layers(sa), comm,
                                                  dsd::dist::layout::replicated),
                       doctest::Contains("is the index of a sharded checkpoint; load it with "
                                         "layout::sharded"),
                       dsd::error);
  comm.barrier();
  if (world_rank() == 0) std::filesystem::remove_all(dir);
}

namespace {
/// A scratch directory every rank sees, removed by rank 0 at the end.
struct SharedDir {
  std::filesystem::path path;
  explicit SharedDir(const char* tag) {
    long id = static_cast<long>(getpid());
    MPI_Bcast(&id, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    path = std::filesystem::temp_directory_path() / (tag + std::to_string(id));
    if (world_rank() == 0) std::filesystem::create_directories(path);
    MPI_Barrier(MPI_COMM_WORLD);
  }
  ~SharedDir() {
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank() == 0) std::filesystem::remove_all(path);
  }
};
}  // namespace

TEST_CASE("a sharded checkpoint whose shards come from two saves is refused on every rank") {
  if (world_size() < 2) return;
  dsd::dist::Mpi comm;
  SharedDir dir("dsd_dist_mix_");
  Sharded a(dsd_test::uniform<float>(1000, 31));
  dsd::Masked sa(a.local, "a");
  const auto p = dir.path / "ck";
  dsd::dist::prune(dsd::layers(sa), dsd::UniformSparsity{.sparsity = 0.5}, comm);
  dsd::dist::save_checkpoint(p, dsd::layers(sa), comm, dsd::dist::layout::sharded);  // save A
  const auto mine = dsd::dist::detail::shard_file(p, world_rank(), world_size());
  std::filesystem::copy_file(mine, mine.string() + ".A");
  if (world_rank() == 0) std::filesystem::copy_file(p, p.string() + ".A");
  comm.barrier();
  dsd::dist::prune(dsd::layers(sa), dsd::UniformSparsity{.sparsity = 0.8}, comm);
  dsd::dist::save_checkpoint(p, dsd::layers(sa), comm, dsd::dist::layout::sharded);  // save B
  // Save B as if it failed after rank 0 renamed its shard: the others' shards and the index are A's.
  if (world_rank() != 0) std::filesystem::rename(mine.string() + ".A", mine);
  if (world_rank() == 0) std::filesystem::rename(p.string() + ".A", p);
  comm.barrier();
  dsd::redense(sa);
  std::fill(a.local.begin(), a.local.end(), 2.0f);
  CHECK_THROWS_WITH_AS(dsd::dist::load_checkpoint(p, dsd::layers(sa), comm, dsd::dist::layout::sharded),
                       doctest::Contains("mixes two saves: the shard of rank(s) 0 comes from another "
                                         "save than the index"),
                       dsd::error);
  CHECK(sa.mask().count() == sa.size());  // no rank loaded anything
  CHECK(std::count(a.local.begin(), a.local.end(), 2.0f) == static_cast<long>(a.local.size()));
  if (world_rank() == 0) std::filesystem::remove(mine.string() + ".A");
}

TEST_CASE("dist checkpoint errors keep their code on every rank") {
  dsd::dist::Mpi comm;
  SharedDir dir("dsd_dist_code_");
  auto w = dsd_test::uniform<float>(64, 32);
  dsd::Masked l(w, "fc");
  // Only rank 0 writes a replicated checkpoint; a reserved metadata key is invalid_argument there
  // and, naming rank 0, on every other rank too (it used to become errc::io everywhere).
  try {
    dsd::dist::save_checkpoint(dir.path / "r", dsd::layers(l), comm, dsd::dist::layout::replicated, {},
                               {{"dsd.mine", "x"}});
    FAIL("no error");
  } catch (const dsd::error& e) {
    CHECK(e.code() == dsd::errc::invalid_argument);
    if (world_rank() == 0)
      CHECK(std::string(e.what()).find("uses the reserved prefix") != std::string::npos);
    else
      CHECK(std::string(e.what()) == "dsd: dist::save_checkpoint failed on rank 0");
  }
  CHECK_FALSE(std::filesystem::exists(dir.path / "r"));
}

TEST_CASE("broadcast_masks compares entries, not mask words, and fails on every rank") {
  dsd::dist::Mpi comm;
  // 100 and 120 weights are both two 64-bit words
  auto w = dsd_test::uniform<float>(world_rank() == world_size() - 1 && world_size() > 1 ? 120 : 100, 33);
  dsd::Masked l(w, "fc");
  dsd::prune(l, 0.5);
  const auto before = l.mask();
  if (world_size() > 1) {
    CHECK_THROWS_WITH_AS(dsd::dist::broadcast_masks(dsd::layers(l), comm),
                         "dsd: dist::broadcast_masks: layer \"fc\" (layer 0) has between 100 and 120 "
                         "weights on different ranks",
                         dsd::error);
    CHECK(l.mask() == before);
  }
  CHECK_THROWS_WITH_AS(dsd::dist::broadcast_masks(dsd::layers(l), comm, world_size()),
                       doctest::Contains("is not a rank of this job"), dsd::error);
}

TEST_CASE("sharded prune follows dsd::prune: excluded layers untouched, names checked") {
  dsd::dist::Mpi comm;
  // An excluded layer that is not M-aligned stays as it is under N:M (it used to throw), and a
  // NaN in it blocks nothing.
  Sharded a(dsd_test::uniform<float>(64 * 40, 34), 4), odd(dsd_test::uniform<float>(64 * 40 + 2, 35));
  dsd::Masked sa(a.local, "a"), so(odd.local, "odd");
  dsd::prune_exactly(so, 1);  // a mask of its own, which the prune must keep
  const auto odd_mask = so.mask();
  const std::size_t nan_at = so.mask().test(0) ? 0 : 1;
  odd.local[nan_at] = std::nanf("");
  const auto stats = dsd::dist::prune(dsd::layers(sa, so), dsd::UniformSparsity{.sparsity = 0.5, .exclude = {"odd"}},
                                      comm, dsd::NMCut<2, 4>{});
  CHECK(so.mask() == odd_mask);
  CHECK(std::isnan(odd.local[nan_at]));
  CHECK(stats[0].kept == 64 * 40 / 2);
  std::uint64_t kept[] = {odd_mask.count()};
  comm.all_reduce_sum(kept);
  CHECK(stats[1].kept == kept[0]);
  // Random-Cut needs unique, non-empty names, as in dsd::prune.
  auto w1 = dsd_test::uniform<float>(50, 36), w2 = dsd_test::uniform<float>(50, 37);
  dsd::Masked d1(w1, "same"), d2(w2, "same"), unnamed(w2);
  CHECK_THROWS_WITH_AS(dsd::dist::prune(dsd::layers(d1, d2), dsd::UniformSparsity{}, comm, dsd::RandomCut{}),
                       doctest::Contains("two layers are named \"same\""), dsd::error);
  CHECK_THROWS_WITH_AS(dsd::dist::prune(dsd::layers(unnamed), dsd::UniformSparsity{}, comm, dsd::RandomCut{}),
                       doctest::Contains("layer 0 has no name"), dsd::error);
  CHECK(d1.mask().count() == 50);
}

TEST_CASE("every rank records the layer's threshold, also a rank whose shard lost nothing") {
  dsd::dist::Mpi comm;
  std::vector<float> full(1000);
  for (std::size_t i = 0; i < full.size(); ++i) full[i] = 0.001f * static_cast<float>(i + 1);
  Sharded a(full);  // the smallest magnitudes all sit on rank 0
  dsd::Masked whole(a.full, "a"), sa(a.local, "a");
  dsd::prune(whole, 0.05);
  dsd::dist::prune(dsd::layers(sa), dsd::UniformSparsity{.sparsity = 0.05}, comm);
  CHECK(whole.threshold() > 0.0);
  CHECK(sa.threshold() == whole.threshold());
  if (world_rank() > 0) CHECK(sa.mask().count() == sa.size());  // this shard lost nothing
}

TEST_CASE("dist::run prunes each tensor over its shards, as the whole tensor would be") {
  dsd::dist::Mpi comm;
  std::vector<float> full(400);
  for (std::size_t i = 0; i < full.size(); ++i) full[i] = 0.01f * static_cast<float>(i + 1);
  Sharded a(full);
  dsd::Masked whole(a.full, "a"), sa(a.local, "a");
  dsd::prune(whole, 0.5);
  dsd::Callbacks cb;
  cb.set_lr = dsd::lr_from_context;
  cb.train_epoch = [](const dsd::EpochContext&) { return 0.0; };
  cb.evaluate = [] { return 1.0; };
  const dsd::Schedule s{.dense_epochs = 1, .sparse_epochs = 1, .end_sparse = true};
  const auto report = dsd::dist::run(dsd::layers(sa), s, dsd::UniformSparsity{.sparsity = 0.5}, cb, comm);
  check_slice(whole, sa, a);  // dsd::run would have pruned half of every shard
  REQUIRE(report.phases.size() == 2);
  CHECK(report.phases[1].layers[0].size == 400);
  CHECK(report.phases[1].layers[0].kept == 200);
  CHECK(report.phases[1].weight_sparsity == doctest::Approx(0.5));
}

TEST_CASE("swapped shard files are refused, and a resized tensor on one rank fails every rank") {
  dsd::dist::Mpi comm;
  SharedDir dir("dsd_dist_swap_");
  if (world_size() == 2) {
    std::vector<float> w{1, 2, 3, 4};
    for (auto& x : w) x += 10.0f * static_cast<float>(world_rank());
    dsd::Masked l(w, "fc");
    const auto p = dir.path / "ck with spaces";  // a path the index must carry as it is
    dsd::dist::save_checkpoint(p, dsd::layers(l), comm, dsd::dist::layout::sharded);
    dsd::dist::load_checkpoint(p, dsd::layers(l), comm, dsd::dist::layout::sharded);
    if (world_rank() == 0) {
      const auto f0 = dsd::dist::detail::shard_file(p, 0, 2), f1 = dsd::dist::detail::shard_file(p, 1, 2);
      std::filesystem::rename(f0, p.string() + ".x");
      std::filesystem::rename(f1, f0);
      std::filesystem::rename(p.string() + ".x", f1);
    }
    comm.barrier();
    CHECK_THROWS_AS(dsd::dist::load_checkpoint(p, dsd::layers(l), comm, dsd::dist::layout::sharded),
                    dsd::error);
    CHECK(w[0] == 1.0f + 10.0f * static_cast<float>(world_rank()));
  }
  // dist::run: rank 1's train_epoch resizes its tensor; every rank throws, none waits
  std::vector<float> v(8, 1.0f);
  dsd::Masked layer(v, "fc");
  dsd::Callbacks cb;
  cb.set_lr = dsd::lr_from_context;
  cb.train_epoch = [&](const dsd::EpochContext&) {
    if (world_rank() == world_size() - 1) v.push_back(1.0f);
    return 0.0;
  };
  cb.evaluate = [] { return 1.0; };
  CHECK_THROWS_AS(dsd::dist::run(dsd::layers(layer), {.dense_epochs = 1, .sparse_epochs = 1},
                                 dsd::UniformSparsity{.sparsity = 0.5}, cb, comm),
                  dsd::error);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  doctest::Context context(argc, argv);
  const int failed = context.run();
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any != 0 ? 1 : 0;
}
