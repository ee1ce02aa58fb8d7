// Attaches identities (container, pod, unit; the owner's parent and executable) to records on
// their way to the sinks, and applies --container and --unit. Runs on the ring thread and never
// waits there while tracing: a record whose cgroup or owner is still being resolved is held,
// and every record after it too, so that order is kept, until the answers are in or it has been
// held kMaxHoldNs. Then it goes on with what is known (null fields) and counts in identity_late.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>

#include "tcptrail/filter.hpp"
#include "tcptrail/identity.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

class IdentityStage : public RecordSink {
public:
  // Far longer than a walk of the cgroup tree or a read of /proc takes (milliseconds), and
  // short beside the 100 ms in which records reach the output.
  static constexpr std::uint64_t kMaxHoldNs = 500'000'000;
  // Records held at most; beyond that the oldest goes on without its identity.
  static constexpr std::size_t kMaxHeld = 65536;

  // next and lookup must outlive the stage; now is CLOCK_MONOTONIC in ns (a fake in tests).
  IdentityStage(RecordSink& next, IdentityLookup& lookup, const Filter& filter,
                std::function<std::uint64_t()> now);

  void write(const Record& record) override;
  void flush() override;
  // Passes on the held records whose answers have arrived (the caller installed them), and
  // those held too long.
  void release();
  [[nodiscard]] std::size_t held() const { return held_.size(); }
  [[nodiscard]] std::uint64_t late() const { return late_; }

private:
  // What a record's identity is looked up by; 0 where there is nothing to look up.
  struct Keys {
    std::uint64_t cgroup_id = 0;
    std::uint32_t pid = 0;
  };
  struct Held {
    std::uint64_t since_ns = 0;
    Keys keys;
    // Writes the record, which it owns a copy of, with the identity found for it.
    std::function<void(const Identity&)> emit;
  };

  static Keys keys_of(const Record& record);
  // What is known of the identity, and whether an answer it needs is still pending.
  Identity identify(const Keys& keys, bool& pending);
  // Applies the filter's containers and units, then writes the record with its identity.
  void deliver(const Record& record, const Identity& identity);
  // A copy of the record that owns what it refers to.
  Held hold(const Record& record, const Keys& keys);
  // Writes the held record with what is known now; forced: counted as late if incomplete.
  void pass(Held& held, bool forced);

  RecordSink& next_;
  IdentityLookup& lookup_;
  const Filter& filter_;
  std::function<std::uint64_t()> now_;
  std::deque<Held> held_;
  std::uint64_t late_ = 0;
};

}  // namespace tcptrail
