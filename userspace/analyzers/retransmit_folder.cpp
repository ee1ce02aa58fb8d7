#include "analyzers/retransmit_folder.hpp"

#include <algorithm>
#include <vector>

namespace tcptrail {

RetransmitFolder::RetransmitFolder(std::uint64_t window_ns,
                                   std::function<void(const RetransmitRecord&)> emit)
    : window_ns_(window_ns), emit_(std::move(emit)) {}

void RetransmitFolder::emit(const Fold& fold) {
  RetransmitRecord record{fold.conn, fold.state, fold.segs, fold.first_ns};
  record.count = fold.count;
  record.last_ts_ns = fold.last_ns;
  emit_(record);
}

void RetransmitFolder::add(const Connection& conn, TcpState state, std::uint32_t segs,
                           std::uint64_t ts_ns) {
  if (window_ns_ == 0) {
    emit_(RetransmitRecord{conn, state, segs, ts_ns});
    return;
  }
  auto it = folds_.find(conn.conn_id);
  if (it != folds_.end()) {
    Fold& fold = it->second;
    if (fold.state == state && fold.segs == segs && ts_ns >= fold.first_ns &&
        ts_ns - fold.first_ns < window_ns_) {
      ++fold.count;
      fold.last_ns = ts_ns;
      return;
    }
    emit(fold);
    folds_.erase(it);
  }
  folds_.emplace(conn.conn_id, Fold{conn, state, segs, ts_ns, ts_ns, 1});
}

void RetransmitFolder::flush_connection(std::uint64_t conn_id) {
  if (auto it = folds_.find(conn_id); it != folds_.end()) {
    emit(it->second);
    folds_.erase(it);
  }
}

void RetransmitFolder::tick(std::uint64_t now_ns) {
  emit_where([&](const Fold& fold) { return fold.first_ns + window_ns_ <= now_ns; });
}

void RetransmitFolder::flush_all() {
  emit_where([](const Fold&) { return true; });
}

// In the order they began, whatever the map's.
void RetransmitFolder::emit_where(const std::function<bool(const Fold&)>& due) {
  std::vector<Fold> out;
  for (auto it = folds_.begin(); it != folds_.end();) {
    if (due(it->second)) {
      out.push_back(std::move(it->second));
      it = folds_.erase(it);
    } else {
      ++it;
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Fold& a, const Fold& b) { return a.first_ns < b.first_ns; });
  for (const Fold& fold : out) {
    emit(fold);
  }
}

}  // namespace tcptrail
