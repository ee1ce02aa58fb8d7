// The kernel side over memory, for unit tests: what bpf/tcptrail.bpf.c does with each
// tracepoint's event. The lifecycle fold is the kernel's own code (tcptrail/fold.h); the map
// handling around it follows the program's, and a test that changes one changes the other.
#pragma once

#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>

#include "tcptrail/connection_table.hpp"
#include "tcptrail/decode.hpp"
#include "tcptrail/events.h"
#include "tcptrail/fold.h"
#include "tcptrail/live_connections.hpp"

namespace tcptrail::testing {

class KernelModel : public LiveConnections {
public:
  explicit KernelModel(std::size_t max_connections = 1 << 20, bool transitions = true)
      : max_(max_connections), transitions_(transitions) {}

  // One tracepoint firing, described by a synthetic event: what the programs would send goes
  // to the table. For a server child's first change, e.detail is how long ago it was created.
  void feed(const Event& e, ConnectionTable& table) {
    const auto old_state = static_cast<std::uint8_t>(e.old_state);
    const auto new_state = static_cast<std::uint8_t>(e.new_state);
    if (e.kind == EventKind::kSynackRetransmit) {
      active_.insert(e.netns_ino);
      Event out = e;
      out.role = Role::kServer;
      out.owner = listener(e.netns_ino, e.lport);
      table.on_event(out);
      return;
    }
    if (e.kind == EventKind::kState && (new_state == TT_LISTEN || old_state == TT_LISTEN)) {
      if (new_state == TT_LISTEN) {
        listeners_[key(e.netns_ino, e.lport)] = e.owner;
      } else {
        listeners_.erase(key(e.netns_ino, e.lport));
      }
      return;
    }
    if (e.kind == EventKind::kState && (new_state == TT_CLOSE_WAIT || new_state == TT_FIN_WAIT2)) {
      active_.insert(e.netns_ino);
    }
    auto found = conns_.find(e.sock_cookie);
    tcptrail_conn* c = found != conns_.end() ? &found->second : nullptr;
    int keep_id = 0;
    std::uint64_t child_age_ns = 0;
    if (e.kind != EventKind::kState) {
      if (c == nullptr) {
        const int admit = tcptrail_admit(nullptr, old_state, old_state, &keep_id);
        const std::uint32_t before =
            tcptrail_retrans_before(static_cast<std::uint8_t>(e.kind), e.detail, e.total_retrans);
        if (admit == TCPTRAIL_ADMIT_LATE ||
            (c = begin(e, nullptr, admit, 0, 0, before)) == nullptr) {
          return;
        }
      }
      std::uint32_t detail = e.detail;
      if (e.kind == EventKind::kResetSent) {
        c->flags |= TCPTRAIL_C_RESET_SENT;
        if ((c->flags & TCPTRAIL_C_AWAITS_RESET) != 0) {
          c->flags &= ~TCPTRAIL_C_AWAITS_RESET;
          awaiting_.erase(e.sock_cookie);
          emit_connection(e, *c, table);
        }
      } else if (e.kind == EventKind::kResetReceived) {
        c->flags |= TCPTRAIL_C_RESET_RECEIVED;
      } else if (e.kind == EventKind::kError && e.detail != 0 && !(c->flags & TCPTRAIL_C_CLOSED)) {
        c->error = static_cast<std::uint16_t>(e.detail);
      } else if (e.kind == EventKind::kRetransmit &&
                 (detail = tcptrail_retransmitted(c, e.total_retrans)) == 0) {
        return;
      }
      Event out = with_lifecycle(e, *c);
      out.detail = detail;
      table.on_event(out);
      return;
    }
    const int admit = tcptrail_admit(c, old_state, new_state, &keep_id);
    if (admit == TCPTRAIL_ADMIT_LATE) {
      return;
    }
    if (admit != TCPTRAIL_ADMIT_CONTINUE) {
      if (c != nullptr && (c->flags & TCPTRAIL_C_AWAITS_RESET) != 0) {
        awaiting_.erase(e.sock_cookie);  // the kernel counts that record lost
      }
      if (admit == TCPTRAIL_ADMIT_CHILD) {
        child_age_ns = e.detail;
      }
      if ((c = begin(e, c, admit, keep_id, child_age_ns, e.total_retrans)) == nullptr) {
        return;
      }
    }
    if (e.sk_err != 0) {
      c->error = e.sk_err;
    }
    if ((new_state == TT_SYN_SENT || new_state == TT_FIN_WAIT1 || new_state == TT_LAST_ACK) &&
        e.owner.known()) {
      c->owner_pid = e.owner.pid;
      c->owner_source = TCPTRAIL_OWNER_SYSCALL;
      std::memcpy(c->owner_comm, e.owner.comm.data(), sizeof(c->owner_comm));
    }
    int known = 0;
    const std::uint64_t ns_in_old =
        tcptrail_fold_state(c, e.ts_ns, new_state, e.total_retrans, e.srtt_us, &known);
    if (transitions_) {
      Event out = with_lifecycle(e, *c);
      out.ns_in_old = ns_in_old;
      out.ns_in_old_known = known != 0;
      out.detail = static_cast<std::uint32_t>(child_age_ns);
      table.on_event(out);
    }
    if (new_state == TT_CLOSE) {
      if (tcptrail_close_awaits_reset(c)) {
        c->flags |= TCPTRAIL_C_AWAITS_RESET;
        awaiting_[e.sock_cookie] = e;
      } else {
        emit_connection(e, *c, table);
      }
    }
  }

  // tcp_destroy_sock: the entry goes. A record still waiting for its RST goes to `table`,
  // which a socket closed that way needs.
  void destroy(std::uint64_t sock_cookie, ConnectionTable* table = nullptr) {
    auto found = conns_.find(sock_cookie);
    if (found != conns_.end() && (found->second.flags & TCPTRAIL_C_AWAITS_RESET) != 0) {
      if (table == nullptr) {
        throw std::logic_error("destroy: the record waiting for its RST needs a table");
      }
      found->second.flags &= ~TCPTRAIL_C_AWAITS_RESET;
      emit_connection(awaiting_.at(sock_cookie), found->second, *table);
    }
    awaiting_.erase(sock_cookie);
    conns_.erase(sock_cookie);
  }

  Seeded seed(Connection& conn) override {
    if (conns_.contains(conn.sock_cookie)) {
      return Seeded::kKnown;
    }
    if (conns_.size() >= max_) {
      return Seeded::kFull;
    }
    conn.conn_id = ++last_conn_id_;
    conns_[conn.sock_cookie] = encode_lifecycle(conn);
    return Seeded::kAdded;
  }
  void seed_listener(std::uint32_t netns_ino, std::uint16_t port, const Owner& owner) override {
    listeners_.try_emplace(key(netns_ino, port), owner);
  }
  [[nodiscard]] std::optional<Connection> find(std::uint64_t sock_cookie) const override {
    auto it = conns_.find(sock_cookie);
    Connection conn;
    conn.sock_cookie = sock_cookie;
    if (it == conns_.end() || !decode_lifecycle(it->second, conn)) {
      return std::nullopt;
    }
    return conn;
  }
  [[nodiscard]] std::size_t open() const override {
    std::size_t count = 0;
    for (const auto& [cookie, c] : conns_) {
      count += (c.flags & TCPTRAIL_C_CLOSED) ? 0 : 1;
    }
    return count;
  }
  [[nodiscard]] std::optional<std::vector<std::uint32_t>> take_active_namespaces() override {
    std::vector<std::uint32_t> active(active_.begin(), active_.end());
    active_.clear();
    return active;
  }
  [[nodiscard]] std::uint64_t overflow() const { return overflow_; }

private:
  static std::uint64_t key(std::uint32_t netns_ino, std::uint16_t port) {
    return (std::uint64_t{netns_ino} << 16) | port;
  }
  [[nodiscard]] Owner listener(std::uint32_t netns_ino, std::uint16_t port) const {
    auto it = listeners_.find(key(netns_ino, port));
    if (it == listeners_.end()) {
      return {};
    }
    Owner owner = it->second;
    owner.source = OwnerSource::kListener;
    return owner;
  }
  tcptrail_conn* begin(const Event& e, tcptrail_conn* old, int admit, int keep_id,
                       std::uint64_t child_age_ns, std::uint32_t total_retrans) {
    tcptrail_conn fresh{};
    tcptrail_begin(&fresh, admit, keep_id && old ? old->conn_id : ++last_conn_id_, e.ts_ns,
                   static_cast<std::uint8_t>(e.old_state), child_age_ns, total_retrans);
    if (admit == TCPTRAIL_ADMIT_CHILD) {
      const Owner owner = listener(e.netns_ino, e.lport);
      fresh.owner_pid = owner.pid;
      fresh.owner_source = owner.known() ? TCPTRAIL_OWNER_LISTENER : TCPTRAIL_OWNER_UNKNOWN;
      std::memcpy(fresh.owner_comm, owner.comm.data(), sizeof(fresh.owner_comm));
    }
    if (old != nullptr) {
      *old = fresh;
      return old;
    }
    if (conns_.size() >= max_) {
      if (admit != TCPTRAIL_ADMIT_PREEXISTING) {
        ++overflow_;
      }
      return nullptr;
    }
    return &(conns_[e.sock_cookie] = fresh);
  }
  // The connection's record as the ring carries it, through the collector's own decoder; e:
  // the event whose socket it is read from.
  static void emit_connection(const Event& e, const tcptrail_conn& c, ConnectionTable& table) {
    tcptrail_conn_record r{};
    r.hdr.ts_ns = e.ts_ns;
    r.hdr.kind = TCPTRAIL_EV_CONNECTION;
    r.hdr.family = e.laddr.family;
    r.sk.sock_cookie = e.sock_cookie;
    r.sk.bytes_acked = e.bytes_acked;
    r.sk.bytes_received = e.bytes_received;
    r.sk.cgroup_id = e.cgroup_id;
    r.sk.total_retrans = e.total_retrans;
    r.sk.srtt_us = e.srtt_us;
    r.sk.netns_ino = e.netns_ino;
    r.sk.sport = e.lport;
    r.sk.dport = e.rport;
    std::memcpy(r.sk.saddr, e.laddr.bytes.data(), sizeof(r.sk.saddr));
    std::memcpy(r.sk.daddr, e.raddr.bytes.data(), sizeof(r.sk.daddr));
    r.sk.sk_err = e.sk_err;
    r.sk.flags = e.flags;
    r.conn = c;
    DecodeStats stats;
    if (auto conn = decode_connection(std::as_bytes(std::span(&r, 1)), stats)) {
      table.on_connection(*conn);
    }
  }
  static Event with_lifecycle(Event e, const tcptrail_conn& c) {
    e.conn_id = c.conn_id;
    e.role = static_cast<Role>(c.role);
    e.conn_flags = c.flags;
    e.owner.pid = c.owner_pid;
    e.owner.source = static_cast<OwnerSource>(c.owner_source);
    std::memcpy(e.owner.comm.data(), c.owner_comm, e.owner.comm.size());
    return e;
  }

  std::size_t max_;
  bool transitions_;
  std::map<std::uint64_t, tcptrail_conn> conns_;
  std::map<std::uint64_t, Owner> listeners_;
  std::map<std::uint64_t, Event> awaiting_;  // the CLOSE of each record waiting for its RST
  std::set<std::uint32_t> active_;           // take_active_namespaces()
  std::uint64_t last_conn_id_ = 0;
  std::uint64_t overflow_ = 0;
};

}  // namespace tcptrail::testing
