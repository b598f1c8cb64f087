#pragma once
/// \file
/// Checkpoints of a distributed run (needs `dsd::io` as well as `dsd::dist`). Replicated layers
/// (data-parallel): rank 0 writes one ordinary dsd checkpoint. Sharded layers: every rank writes
/// its slices to `PATH.rank-R-of-N.safetensors`, then rank 0 writes `PATH`, a small index naming
/// the files. Both record the world size and the layout; loading with another world size or
/// layout is an error on every rank. Writes are atomic (each file via a temporary and a rename,
/// the index last).

#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "dsd/dist/communicator.hpp"
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
  return std::filesystem::path(path.string() + ".rank-" + std::to_string(rank) + "-of-" +
                               std::to_string(size) + ".safetensors");
}

/// Runs `f` on this rank; if it throws on any rank, every rank throws (this rank's message, or
/// that another rank failed), so no rank waits in a collective another left.
template <communicator Comm, class F>
void collectively(Comm& comm, const char* what, F&& f) {
  std::string message;
  try {
    f();
  } catch (const std::exception& e) {
    message = e.what();
  }
  std::uint64_t failed[] = {message.empty() ? std::uint64_t{0} : std::uint64_t{1}};
  comm.all_reduce_max(failed);
  if (failed[0] == 0) return;
  if (!message.empty()) throw error(errc::io, message.substr(message.rfind("dsd: ", 0) == 0 ? 5 : 0));
  DSD_THROW(io, what, " failed on another rank");
}

}  // namespace detail

/// Saves a distributed run's layers (and loop state, metadata) at `path`. Collective.
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
  metadata["dist.rank"] = std::to_string(comm.rank());
  detail::collectively(comm, "dist::save_checkpoint", [&] {
    io::save_checkpoint(detail::shard_file(path, comm.rank(), comm.size()), layers, loop, metadata);
  });
  detail::collectively(comm, "dist::save_checkpoint", [&] {
    if (comm.rank() != 0) return;
    std::string index = "dsd sharded checkpoint\nworld_size " + std::to_string(comm.size()) + "\n";
    for (int r = 0; r < comm.size(); ++r)
      index += detail::shard_file(path.filename(), r, comm.size()).string() + "\n";
    io::write_atomic(path, index);
  });
}

/// Loads what `save_checkpoint` wrote into `layers` (this rank's), returning the metadata.
/// Throws on every rank if the world size or layout differ from the saving run's, or if any
/// rank's file is missing or does not match its layers. Collective.
template <layer_collection C, communicator Comm>
std::map<std::string, std::string> load_checkpoint(const std::filesystem::path& path, C&& layers,
                                                   Comm& comm, layout how) {
  std::map<std::string, std::string> meta;
  detail::collectively(comm, "dist::load_checkpoint", [&] {
    const auto file = how == layout::replicated ? path : detail::shard_file(path, comm.rank(), comm.size());
    if (how == layout::sharded && !std::filesystem::exists(file)) {
      DSD_REQUIRE(std::filesystem::exists(path), io, "no checkpoint at \"", path.string(), "\"");
      DSD_THROW(io, "\"", path.string(), "\" was not written by a sharded run of ", comm.size(),
                " ranks (no \"", file.filename().string(), "\"); resume with the world size it was saved with");
    }
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
    meta = io::load_checkpoint(f, layers);
  });
  return meta;
}

}  // namespace dsd::dist
