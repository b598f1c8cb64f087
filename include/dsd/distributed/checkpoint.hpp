#pragma once
/// \file
/// Checkpoints of a distributed run (needs `dsd::io` as well as `dsd::dist`). Replicated layers
/// (data-parallel): rank 0 writes one ordinary dsd checkpoint. Sharded layers: every rank writes
/// its slices to `PATH.rank-R-of-N.safetensors`, then rank 0 writes `PATH`, a small index naming
/// the files. Both record the world size and the layout; loading with another world size or
/// layout is an error on every rank. Writes are atomic (each file via a temporary and a rename,
/// the index last).

#include <charconv>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dsd/distributed/communicator.hpp"
#include "dsd/error.hpp"
#include "dsd/io/atomic_file.hpp"
#include "dsd/io/checkpoint.hpp"
#include "dsd/layers.hpp"

namespace dsd::dist {

/// How the layers of a run are distributed.
enum class layout {
  replicated,  ///< every rank holds all weights (data-parallel): one file, written by rank 0
  sharded,     ///< every rank holds a slice: one file per rank plus an index
};

namespace detail {

inline const char* to_string(layout l) { return l == layout::replicated ? "replicated" : "sharded"; }

inline std::filesystem::path shard_file(const std::filesystem::path& path, int rank, int size) {
  return {path.string() + ".rank-" + std::to_string(rank) + "-of-" + std::to_string(size) +
          ".safetensors"};
}

inline constexpr std::string_view index_magic = "dsd sharded checkpoint\n";

/// A fresh 64-bit id for one save, chosen on rank 0 and known to every rank.
template <communicator Comm>
std::uint64_t new_save_id(Comm& comm) {
  std::uint64_t id = 0;
  if (comm.rank() == 0) {
    id = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
         (static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) << 17);
    try {  // entropy when there is some; the clocks alone still differ between saves
      std::random_device rd;
      id ^= (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    } catch (...) {
    }
  }
  comm.broadcast(std::as_writable_bytes(std::span(&id, 1)), 0);
  return id;
}

inline std::string id_text(std::uint64_t id) {
  char buf[17];
  const auto r = std::to_chars(buf, buf + sizeof buf, id, 16);
  return {buf, r.ptr};
}

/// The save id an index at `path` records; throws unless `path` is a sharded index of `size`
/// ranks.
inline std::uint64_t read_index(const std::filesystem::path& path, int size) {
  std::ifstream in(path, std::ios::binary);
  DSD_REQUIRE(in.good(), io, "no checkpoint at \"", path.string(), "\"");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  DSD_REQUIRE(text.rfind(index_magic, 0) == 0, io, "\"", path.string(),
              "\" is not the index of a sharded checkpoint (a replicated run's file? load it with "
              "layout::replicated)");
  std::istringstream lines(text.substr(index_magic.size()));
  std::map<std::string, std::string> fields;
  for (std::string line; std::getline(lines, line);) {  // "key value", the value to the line's end
    const auto space = line.find(' ');
    if (space != std::string::npos) fields.emplace(line.substr(0, space), line.substr(space + 1));
  }
  DSD_REQUIRE(fields.count("world_size") && fields.count("save_id"), io, "\"", path.string(),
              "\": the sharded index has no world size or save id (written by an older dsd? "
              "save it again)");
  DSD_REQUIRE(fields["world_size"] == std::to_string(size), io, "\"", path.string(),
              "\" was written by a sharded run of ", fields["world_size"], " ranks; this job has ",
              size, " (resume with the world size it was saved with)");
  std::uint64_t id = 0;
  const std::string& t = fields["save_id"];
  const auto r = std::from_chars(t.data(), t.data() + t.size(), id, 16);
  DSD_REQUIRE(r.ec == std::errc{} && r.ptr == t.data() + t.size(), io, "\"", path.string(),
              "\": malformed save id \"", t, "\"");
  return id;
}

}  // namespace detail

/// Saves a distributed run's layers (and loop state, metadata) at `path`. Collective. A sharded
/// save gives every shard and the index one fresh save id; a load refuses shards of another save.
template <layer_collection C, communicator Comm>
void save_checkpoint(const std::filesystem::path& path, C&& layers, Comm& comm, layout how,
                     const io::LoopState& loop = {},
                     std::map<std::string, std::string> metadata = {}) {
  metadata["dist.world_size"] = std::to_string(comm.size());
  metadata["dist.layout"] = detail::to_string(how);
  if (how == layout::replicated) {
    detail::collectively(comm, "dist::save_checkpoint", [&] {
      if (comm.rank() == 0) io::save_checkpoint(path, layers, loop, metadata);
    });
    return;
  }
  const std::string id = detail::id_text(detail::new_save_id(comm));
  metadata["dist.rank"] = std::to_string(comm.rank());
  metadata["dist.save_id"] = id;
  detail::collectively(comm, "dist::save_checkpoint", [&] {
    io::save_checkpoint(detail::shard_file(path, comm.rank(), comm.size()), layers, loop, metadata);
  });
  detail::collectively(comm, "dist::save_checkpoint", [&] {
    if (comm.rank() != 0) return;
    std::string index = std::string(detail::index_magic) + "world_size " +
                        std::to_string(comm.size()) + "\nsave_id " + id + "\n";
    for (int r = 0; r < comm.size(); ++r)
      index += "shard " + detail::shard_file(path.filename(), r, comm.size()).string() + "\n";
    io::write_atomic(path, index);
  });
}

/// Loads what `save_checkpoint` wrote into `layers` (this rank's), returning the metadata.
/// Throws on every rank, changing no layer on any, if the world size or layout differ from the
/// saving run's, if any rank's file is missing or does not match its layers, or if a shard comes
/// from another save than the index (naming the ranks whose shard differs). Collective.
template <layer_collection C, communicator Comm>
std::map<std::string, std::string> load_checkpoint(const std::filesystem::path& path, C&& layers,
                                                   Comm& comm, layout how) {
  std::map<std::string, std::string> meta;
  std::function<void()> commit;
  bool other_save = false;
  detail::collectively(comm, "dist::load_checkpoint", [&] {
    std::optional<std::uint64_t> index_id;
    if (how == layout::sharded) index_id = detail::read_index(path, comm.size());
    const auto file = how == layout::replicated ? path : detail::shard_file(path, comm.rank(), comm.size());
    if (how == layout::replicated) {
      std::ifstream in(path, std::ios::binary);
      char head[detail::index_magic.size()] = {};
      in.read(head, sizeof head);
      DSD_REQUIRE(std::string_view(head, static_cast<std::size_t>(in.gcount())) != detail::index_magic,
                  io, "\"", path.string(), "\" is the index of a sharded checkpoint; load it with "
                  "layout::sharded");
    }
    if (how == layout::replicated)
      DSD_REQUIRE(std::filesystem::exists(file), io, "no checkpoint at \"", path.string(), "\"");
    DSD_REQUIRE(std::filesystem::exists(file), io, "\"", path.string(), "\": rank ", comm.rank(),
                "'s shard \"", file.filename().string(), "\" is missing");
    const io::File f(file);
    const auto& m = f.metadata();
    const auto size = m.find("dist.world_size");
    const auto saved_layout = m.find("dist.layout");
    DSD_REQUIRE(size != m.end() && saved_layout != m.end(), io, "\"", file.string(),
                "\" was not written by dist::save_checkpoint");
    DSD_REQUIRE(saved_layout->second == detail::to_string(how), io, "\"", file.string(),
                "\" holds a ", saved_layout->second, " run; loading it as ", detail::to_string(how));
    DSD_REQUIRE(size->second == std::to_string(comm.size()), io, "\"", file.string(),
                "\" was written by ", size->second, " ranks; this job has ", comm.size(),
                " (resume with the same world size)");
    if (index_id) {
      const auto rank = m.find("dist.rank");
      DSD_REQUIRE(rank != m.end() && rank->second == std::to_string(comm.rank()), io, "\"",
                  file.string(), "\" holds the shard of rank ",
                  rank == m.end() ? std::string("(none)") : rank->second, ", not of rank ",
                  comm.rank(), " (shard files renamed or swapped?)");
      const auto id = m.find("dist.save_id");
      other_save = id == m.end() || id->second != detail::id_text(*index_id);
    }
    commit = io::detail::prepare_load(f, layers);
    meta = io::detail::user_metadata(f);
  });
  if (how == layout::sharded) {  // every shard from the save the index names, or no rank loads
    std::vector<std::uint64_t> differs(static_cast<std::size_t>(comm.size()), 0);
    differs[static_cast<std::size_t>(comm.rank())] = other_save ? 1 : 0;
    comm.all_reduce_sum(differs);
    std::string ranks;
    for (std::size_t r = 0; r < differs.size(); ++r)
      if (differs[r] != 0) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
    DSD_REQUIRE(ranks.empty(), io, "\"", path.string(), "\" mixes two saves: the shard of rank(s) ",
                ranks, " comes from another save than the index (a save that failed part-way); "
                "refusing to load any rank");
  }
  commit();
  return meta;
}

}  // namespace dsd::dist
