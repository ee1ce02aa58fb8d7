#include "sinks/identity_stage.hpp"

#include <type_traits>
#include <utility>
#include <variant>

namespace tcptrail {

namespace {

template <typename T>
concept AboutConnection = requires(const T& record) {
  record.conn;
};

}  // namespace

IdentityStage::IdentityStage(RecordSink& next, IdentityLookup& lookup, const Filter& filter,
                             std::function<std::uint64_t()> now)
    : next_(next), lookup_(lookup), filter_(filter), now_(std::move(now)) {}

IdentityStage::Keys IdentityStage::keys_of(const Record& record) {
  return std::visit(
      [](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        Keys keys;
        if constexpr (AboutConnection<T>) {
          keys.cgroup_id = r.conn.cgroup_id;
        }
        // Only the connection record names the owner's parent and executable.
        if constexpr (std::is_same_v<T, ConnectionRecord>) {
          keys.pid = r.conn.owner.pid;
        }
        return keys;
      },
      record);
}

Identity IdentityStage::identify(const Keys& keys, bool& pending) {
  Identity identity;
  pending = false;
  if (keys.cgroup_id != 0) {
    const IdentityAnswer<CgroupIdentity> answer = lookup_.cgroup(keys.cgroup_id);
    identity.cgroup = answer.value;
    pending = answer.pending;
  }
  if (keys.pid != 0) {
    const IdentityAnswer<ProcessIdentity> answer = lookup_.process(keys.pid, now_());
    identity.process = answer.value;
    pending = pending || answer.pending;
  }
  return identity;
}

void IdentityStage::deliver(const Record& record, const Identity& identity) {
  std::visit(
      [&](auto r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (AboutConnection<T>) {
          if (!filter_.matches_identity(identity.cgroup)) {
            return;
          }
          r.identity = identity;
        } else if constexpr (std::is_same_v<T, TimeWaitPressureRecord>) {
          if (filter_.filters_identity()) {
            return;  // a destination's TIME_WAIT count belongs to no one container or unit
          }
        } else if constexpr (std::is_same_v<T, StopRecord>) {
          StopInfo info = r.info;
          info.identity_late = late_;
          next_.write(StopRecord{info});
          return;
        }
        next_.write(Record{r});
      },
      record);
}

IdentityStage::Held IdentityStage::hold(const Record& record, const Keys& keys) {
  Held held;
  held.since_ns = now_();
  held.keys = keys;
  // The record refers to the caller's data, which lives only during write(): the held copy
  // owns what it refers to.
  held.emit = std::visit(
      [this](const auto& r) -> std::function<void(const Identity&)> {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, StartRecord>) {
          return [this, info = r.info](const Identity& id) { deliver(StartRecord{info}, id); };
        } else if constexpr (std::is_same_v<T, ConnectionRecord>) {
          return [this, conn = r.conn, ts = r.ts_ns](const Identity& id) {
            deliver(ConnectionRecord{conn, ts}, id);
          };
        } else if constexpr (std::is_same_v<T, StateRecord>) {
          return [this, conn = r.conn, r](const Identity& id) {
            deliver(StateRecord{conn, r.old_state, r.new_state, r.ns_in_old, r.ns_in_old_known,
                                r.ts_ns},
                    id);
          };
        } else if constexpr (std::is_same_v<T, RetransmitRecord>) {
          return [this, conn = r.conn, r](const Identity& id) {
            RetransmitRecord copy{conn, r.state, r.segs, r.ts_ns};
            copy.count = r.count;
            copy.last_ts_ns = r.last_ts_ns;
            deliver(copy, id);
          };
        } else if constexpr (std::is_same_v<T, ResetRecord>) {
          return [this, conn = r.conn, r](const Identity& id) {
            deliver(ResetRecord{conn, r.direction, r.state, r.ts_ns}, id);
          };
        } else if constexpr (std::is_same_v<T, LeakRecord>) {
          return [this, conn = r.conn, leak = r.leak](const Identity& id) {
            deliver(LeakRecord{conn, leak}, id);
          };
        } else if constexpr (std::is_same_v<T, LeakResolvedRecord>) {
          return [this, conn = r.conn, leak = r.leak](const Identity& id) {
            deliver(LeakResolvedRecord{conn, leak}, id);
          };
        } else if constexpr (std::is_same_v<T, InterimRecord>) {
          return [this, conn = r.conn, r](const Identity& id) {
            deliver(InterimRecord{conn, r.state, r.srtt_us, r.since_last, r.total, r.ts_ns}, id);
          };
        } else if constexpr (std::is_same_v<T, TimeWaitPressureRecord>) {
          return [this, pressure = r.pressure](const Identity& id) {
            deliver(TimeWaitPressureRecord{pressure}, id);
          };
        } else if constexpr (std::is_same_v<T, StopRecord>) {
          return [this, info = r.info](const Identity& id) { deliver(StopRecord{info}, id); };
        } else {
          static_assert(std::is_same_v<T, StatsRecord>);
          return {};  // never held: write() passes it on at once
        }
      },
      record);
  return held;
}

void IdentityStage::write(const Record& record) {
  if (std::holds_alternative<StatsRecord>(record)) {
    next_.write(record);  // live counters: not about a socket, and not to wait behind one
    return;
  }
  const Keys keys = keys_of(record);
  // Asks at once what is not known yet, also behind a held record, so that the answers come
  // together and not one after the other.
  bool pending = false;
  const Identity identity = identify(keys, pending);
  if (held_.empty() && !pending) {
    deliver(record, identity);
    return;
  }
  held_.push_back(hold(record, keys));
  if (std::holds_alternative<StopRecord>(record)) {
    // The end of the run: what is held gets the time it would have had, then goes.
    lookup_.wait_for_answers(kMaxHoldNs);
    while (!held_.empty()) {
      pass(held_.front(), true);
      held_.pop_front();
    }
    return;
  }
  release();
}

void IdentityStage::pass(Held& held, bool forced) {
  bool pending = false;
  const Identity identity = identify(held.keys, pending);
  if (forced && pending) {
    ++late_;
  }
  held.emit(identity);
}

void IdentityStage::release() {
  while (!held_.empty()) {
    Held& head = held_.front();
    bool pending = false;
    identify(head.keys, pending);
    const bool too_long = now_() - head.since_ns >= kMaxHoldNs || held_.size() > kMaxHeld;
    if (pending && !too_long) {
      return;
    }
    pass(head, too_long);
    held_.pop_front();
  }
}

void IdentityStage::flush() {
  next_.flush();
}

}  // namespace tcptrail
