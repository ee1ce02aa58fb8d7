// Ring-buffer bytes to typed events and connections. Pure: no I/O, no kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "tcptrail/connection.hpp"
#include "tcptrail/event.hpp"

struct tcptrail_conn;

namespace tcptrail {

struct DecodeStats {
  std::uint64_t decoded = 0;
  std::uint64_t rejected = 0;  // wrong size, unknown kind, family or state path
};

// Receives raw ring-buffer records from the loader.
class RecordHandler {
public:
  virtual ~RecordHandler() = default;
  virtual void on_record(std::span<const std::byte> bytes) = 0;
};

// The record's kind (TCPTRAIL_EV_*), 0 if it is too short to have one.
std::uint8_t record_kind(std::span<const std::byte> bytes);

// Decodes an event record (every kind but the connection records); counts and returns nullopt
// for anything malformed.
std::optional<Event> decode_event(std::span<const std::byte> bytes, DecodeStats& stats);

// Decodes a connection record into the finished connection (close and time_wait are left to
// the connection table); counts and returns nullopt for anything malformed.
std::optional<Connection> decode_connection(std::span<const std::byte> bytes, DecodeStats& stats);

// The connection records a batch (TCPTRAIL_EV_CONNECTION_BATCH) carries, each
// TCPTRAIL_CONN_RECORD_SIZE bytes for decode_connection; counts and returns an empty span for a
// malformed batch.
std::span<const std::byte> batched_connections(std::span<const std::byte> bytes,
                                               DecodeStats& stats);

// The lifecycle part of a `conns` map entry onto conn (the rest is left as is); false if the
// entry is malformed.
bool decode_lifecycle(const tcptrail_conn& raw, Connection& conn);
// The entry the kernel would hold for conn, for a socket the collector seeds.
tcptrail_conn encode_lifecycle(const Connection& conn);

}  // namespace tcptrail
