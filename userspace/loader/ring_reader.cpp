#include "loader/ring_reader.hpp"

#include <linux/bpf.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "tcptrail/error.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

namespace {

// bpf_ktime_get_ns() and clock_gettime() read the same clock through different paths; this
// margin covers any skew between them.
constexpr std::uint64_t kClockSlackNs = 100'000;
// Records between two publications of the consumer positions within one batch: often enough
// that producers see space freed long before a ring could fill.
constexpr std::size_t kPublishEvery = 1024;

bool later(const auto& a, const auto& b) {
  return a.ts_ns > b.ts_ns;
}

}  // namespace

RingReader::Next RingReader::peek(std::span<const std::byte>& record) {
  while (consumer_ < producer_) {
    const std::byte* at = ring_.data + (consumer_ & (ring_.data_bytes - 1));
    const std::uint32_t header =
        __atomic_load_n(reinterpret_cast<const std::uint32_t*>(at), __ATOMIC_ACQUIRE);
    if ((header & BPF_RINGBUF_BUSY_BIT) != 0) {
      return Next::kBusy;
    }
    const std::uint32_t length = header & ~BPF_RINGBUF_DISCARD_BIT;
    record_step_ = (std::uint64_t{length} + BPF_RINGBUF_HDR_SZ + 7) & ~std::uint64_t{7};
    if ((header & BPF_RINGBUF_DISCARD_BIT) == 0) {
      record = {at + BPF_RINGBUF_HDR_SZ, length};
      return Next::kRecord;
    }
    pop();
  }
  return Next::kEmpty;
}

RingMerge::RingMerge(std::vector<RingReader> rings, Clock clock)
    : rings_(std::move(rings)), clock_(std::move(clock)), read_up_to_(rings_.size(), 0) {
  heads_.reserve(rings_.size());
}

bool RingMerge::next(std::size_t i, std::uint64_t horizon, Head& head) {
  std::span<const std::byte> record;
  switch (rings_[i].peek(record)) {
    case RingReader::Next::kRecord:
      head.ring = i;
      head.record = record;
      head.ts_ns = 0;
      std::memcpy(&head.ts_ns, record.data(), std::min(record.size(), sizeof(head.ts_ns)));
      return true;
    case RingReader::Next::kEmpty:
      read_up_to_[i] = horizon;
      break;
    case RingReader::Next::kBusy:
      break;
  }
  bound_ = std::min(bound_, read_up_to_[i]);
  return false;
}

void RingMerge::push(const Head& head) {
  heads_.push_back(head);
  std::push_heap(heads_.begin(), heads_.end(), later<Head, Head>);
}

std::size_t RingMerge::run(RecordHandler& handler, bool ordered) {
  // The time comes before the snapshots, so nothing reserved after them is stamped before it.
  const std::uint64_t now = clock_();
  const std::uint64_t horizon = now > kClockSlackNs ? now - kClockSlackNs : 0;
  heads_.clear();
  bound_ = std::numeric_limits<std::uint64_t>::max();
  Head head{};
  double fullest = 0;
  for (std::size_t i = 0; i < rings_.size(); ++i) {
    rings_[i].snapshot();
    fullest = std::max(fullest, rings_[i].fill());
    if (next(i, horizon, head)) {
      push(head);
    }
  }
  double peak = peak_fill_.load(std::memory_order_relaxed);
  while (fullest > peak && !peak_fill_.compare_exchange_weak(peak, fullest)) {
  }
  const auto releasable = [&](const Head& h) { return !ordered || h.ts_ns <= bound_; };
  std::size_t count = 0;
  while (!heads_.empty() && releasable(heads_.front())) {
    std::pop_heap(heads_.begin(), heads_.end(), later<Head, Head>);
    head = heads_.back();
    heads_.pop_back();
    // Records come in runs from one ring: take them while they stay the oldest, without
    // going through the heap.
    for (;;) {
      handler.on_record(head.record);
      rings_[head.ring].pop();
      if (++count % kPublishEvery == 0) {
        for (RingReader& ring : rings_) {
          ring.publish();
        }
      }
      if (!next(head.ring, horizon, head)) {
        break;
      }
      if (!releasable(head) || (!heads_.empty() && later(head, heads_.front()))) {
        push(head);
        break;
      }
    }
  }
  for (RingReader& ring : rings_) {
    ring.publish();
  }
  return count;
}

std::size_t RingMerge::consume(RecordHandler& handler) {
  return run(handler, true);
}

std::size_t RingMerge::consume_all(RecordHandler& handler) {
  return run(handler, false);
}

RingSet::Mapping::Mapping(int fd, std::size_t offset, std::size_t bytes, int protection)
    : address_(mmap(nullptr, bytes, protection, MAP_SHARED, fd, static_cast<off_t>(offset))),
      bytes_(bytes) {
  if (address_ == MAP_FAILED) {
    throw TraceError("cannot map a ring buffer", errno);
  }
}

RingSet::Mapping::Mapping(Mapping&& other) noexcept
    : address_(std::exchange(other.address_, MAP_FAILED)), bytes_(other.bytes_) {}

RingSet::Mapping::~Mapping() {
  if (address_ != MAP_FAILED) {
    munmap(address_, bytes_);
  }
}

RingSet::RingSet(const std::vector<int>& map_fds, std::size_t data_bytes)
    : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {
  if (!epoll_fd_) {
    throw TraceError("cannot wait on the ring buffers", errno);
  }
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  std::vector<RingReader> readers;
  mappings_.reserve(2 * map_fds.size());
  for (const int fd : map_fds) {
    // The kernel's layout: a writable consumer page, then a read-only producer page followed
    // by the data pages mapped twice.
    const Mapping& consumer = mappings_.emplace_back(fd, 0, page, PROT_READ | PROT_WRITE);
    const Mapping& producer = mappings_.emplace_back(fd, page, page + 2 * data_bytes, PROT_READ);
    readers.emplace_back(RingReader::Layout{
        .consumer_pos = reinterpret_cast<std::uint64_t*>(consumer.get()),
        .producer_pos = reinterpret_cast<const std::uint64_t*>(producer.get()),
        .data = producer.get() + page,
        .data_bytes = data_bytes,
    });
    // Edge-triggered: a ring still holds the records too new to release yet, which would make a
    // level-triggered wait return at once.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      throw TraceError("cannot wait on the ring buffers", errno);
    }
  }
  merge_ = std::make_unique<RingMerge>(std::move(readers), monotonic_ns);
}

bool RingSet::wait(int timeout_ms) {
  epoll_event ev{};
  const int n = epoll_wait(epoll_fd_.get(), &ev, 1, timeout_ms);
  if (n < 0 && errno != EINTR) {
    throw TraceError("ring buffer wait failed", errno);
  }
  return n > 0;
}

}  // namespace tcptrail
