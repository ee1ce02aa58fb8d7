// Ring-buffer bytes to typed events. Pure: no I/O, no kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "tcptrail/event.hpp"

namespace tcptrail {

struct DecodeStats {
  std::uint64_t decoded = 0;
  std::uint64_t rejected = 0;  // wrong size, unknown kind or family
};

// Receives raw ring-buffer records from the loader.
class RecordHandler {
public:
  virtual ~RecordHandler() = default;
  virtual void on_record(std::span<const std::byte> bytes) = 0;
};

// Decodes one ring-buffer record; counts and returns nullopt for anything malformed.
std::optional<Event> decode_event(std::span<const std::byte> bytes, DecodeStats& stats);

}  // namespace tcptrail
