#include "cli/record_queue.hpp"

#include <cstring>

namespace tcptrail {

void RecordQueue::on_record(std::span<const std::byte> bytes) {
  const auto size = static_cast<std::uint32_t>(bytes.size());
  const std::size_t at = filling_.size();
  filling_.resize(at + sizeof(size) + bytes.size());
  std::memcpy(filling_.data() + at, &size, sizeof(size));
  std::memcpy(filling_.data() + at + sizeof(size), bytes.data(), bytes.size());
}

void RecordQueue::publish() {
  if (filling_.empty()) {
    return;
  }
  std::vector<std::byte> next;
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    ready_bytes_ += filling_.size();
    wake = ready_bytes_ >= kWakeBytes;
    ready_.push_back(std::move(filling_));
    if (!spare_.empty()) {
      next = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  if (wake) {
    ready_cv_.notify_one();
  }
  filling_ = std::move(next);
  filling_.clear();
}

std::size_t RecordQueue::waiting_bytes() {
  const std::lock_guard lock(mutex_);
  return ready_bytes_;
}

bool RecordQueue::full() {
  std::lock_guard lock(mutex_);
  return ready_bytes_ >= max_bytes_;
}

void RecordQueue::close() {
  publish();
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  ready_cv_.notify_one();
}

bool RecordQueue::consume(RecordHandler& handler, std::chrono::milliseconds timeout) {
  std::vector<std::byte> chunk;
  {
    std::unique_lock lock(mutex_);
    ready_cv_.wait_for(lock, timeout, [this] { return closed_ || !ready_.empty(); });
    if (ready_.empty()) {
      return !closed_;
    }
    chunk = std::move(ready_.front());
    ready_.pop_front();
    ready_bytes_ -= chunk.size();
  }
  for (std::size_t at = 0; at + sizeof(std::uint32_t) <= chunk.size();) {
    std::uint32_t size = 0;
    std::memcpy(&size, chunk.data() + at, sizeof(size));
    at += sizeof(size);
    handler.on_record(std::span(chunk.data() + at, size));
    at += size;
  }
  chunk.clear();
  std::lock_guard lock(mutex_);
  spare_.push_back(std::move(chunk));
  return true;
}

}  // namespace tcptrail
