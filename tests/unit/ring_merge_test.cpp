// The merge of per-CPU rings, over fake rings laid out as the kernel lays out a BPF ring buffer
// (a header of length and flags before each 8-byte-aligned record), with a fake clock.
#include <linux/bpf.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "loader/ring_reader.hpp"

namespace tcptrail {
namespace {

constexpr std::uint64_t kMs = 1'000'000;

// A ring whose data area is written twice over, as the kernel maps it, so that a record
// crossing the end reads as one piece.
class FakeRing {
public:
  explicit FakeRing(std::size_t bytes) : bytes_(bytes), data_(2 * bytes) {}

  RingReader reader() { return RingReader({&consumer_pos_, &producer_pos_, data_.data(), bytes_}); }
  // Reserves a record stamped ts_ms carrying id; it stays busy until commit().
  std::uint64_t reserve(double ts_ms, std::uint64_t id) {
    const std::uint64_t at = producer_pos_;
    const auto ts = static_cast<std::uint64_t>(ts_ms * kMs);
    std::byte payload[16];
    std::memcpy(payload, &ts, 8);
    std::memcpy(payload + 8, &id, 8);
    write(at + BPF_RINGBUF_HDR_SZ, payload, sizeof(payload));
    set_header(at, sizeof(payload) | BPF_RINGBUF_BUSY_BIT);
    producer_pos_ += BPF_RINGBUF_HDR_SZ + sizeof(payload);
    return at;
  }
  void commit(std::uint64_t at) { set_header(at, 16); }
  void discard(std::uint64_t at) { set_header(at, 16 | BPF_RINGBUF_DISCARD_BIT); }
  void append(double ts_ms, std::uint64_t id) { commit(reserve(ts_ms, id)); }
  [[nodiscard]] std::uint64_t consumer_pos() const { return consumer_pos_; }
  [[nodiscard]] std::uint64_t producer_pos() const { return producer_pos_; }
  // Moves both positions, as if this much had been written and read before.
  void skip(std::uint64_t bytes) { consumer_pos_ = producer_pos_ = producer_pos_ + bytes; }

private:
  void set_header(std::uint64_t at, std::uint32_t length) {
    const std::uint32_t header[2] = {length, 0};
    write(at, header, sizeof(header));
  }
  void write(std::uint64_t at, const void* bytes, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i) {
      const std::size_t offset = (at + i) & (bytes_ - 1);
      data_[offset] = data_[offset + bytes_] = static_cast<const std::byte*>(bytes)[i];
    }
  }

  std::size_t bytes_;
  std::vector<std::byte> data_;
  std::uint64_t consumer_pos_ = 0;
  std::uint64_t producer_pos_ = 0;
};

class Ids : public RecordHandler {
public:
  void on_record(std::span<const std::byte> bytes) override {
    ASSERT_EQ(bytes.size(), 16U);
    std::uint64_t id = 0;
    std::memcpy(&id, bytes.data() + 8, 8);
    seen.push_back(id);
  }
  std::vector<std::uint64_t> seen;
};

class RingMergeTest : public ::testing::Test {
protected:
  RingMerge merge() {
    std::vector<RingReader> readers;
    for (FakeRing& ring : rings) {
      readers.push_back(ring.reader());
    }
    return RingMerge(std::move(readers), [this] { return now_ms * kMs; });
  }

  std::vector<FakeRing> rings{FakeRing(4096), FakeRing(4096)};
  std::uint64_t now_ms = 1000;
  Ids ids;
};

TEST_F(RingMergeTest, HandsOverRecordsOfAllRingsInTimestampOrder) {
  rings[0].append(10, 1);
  rings[0].append(30, 3);
  rings[0].append(31, 4);
  rings[1].append(20, 2);
  rings[1].append(40, 5);
  RingMerge m = merge();
  EXPECT_EQ(m.consume(ids), 5U);
  EXPECT_EQ(ids.seen, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  for (const FakeRing& ring : rings) {
    EXPECT_EQ(ring.consumer_pos(), ring.producer_pos()) << "the kernel may reuse the space";
  }
  EXPECT_EQ(m.consume(ids), 0U);
}

TEST_F(RingMergeTest, SortsRandomRunsFromManyRings) {
  rings = {FakeRing(1 << 16), FakeRing(1 << 16), FakeRing(1 << 16)};
  std::mt19937 random(7);
  std::vector<double> last(rings.size(), 0);
  for (std::uint64_t id = 1; id <= 600; ++id) {
    const std::size_t ring = random() % rings.size();
    last[ring] += 0.001 * static_cast<double>(1 + random() % 50);  // each ring in order
    rings[ring].append(last[ring], static_cast<std::uint64_t>(last[ring] * 1e6));
  }
  RingMerge m = merge();
  EXPECT_EQ(m.consume(ids), 600U);
  EXPECT_TRUE(std::is_sorted(ids.seen.begin(), ids.seen.end()));
}

TEST_F(RingMergeTest, HoldsBackRecordsNewerThanTheLastLookAtAnEmptyRing) {
  // Ring 1 is empty when looked at, at 25 ms: it may still receive a record stamped 26 ms,
  // which must come before the one of 30 ms.
  rings[0].append(10, 1);
  rings[0].append(30, 3);
  now_ms = 25;
  RingMerge m = merge();
  EXPECT_EQ(m.consume(ids), 1U);
  EXPECT_EQ(ids.seen, std::vector<std::uint64_t>{1});
  rings[1].append(26, 2);
  now_ms = 40;
  EXPECT_EQ(m.consume(ids), 2U);
  EXPECT_EQ(ids.seen, (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST_F(RingMergeTest, WaitsForARecordStillBeingWritten) {
  rings[0].append(10, 1);
  rings[0].append(20, 3);
  const std::uint64_t busy = rings[1].reserve(15, 2);
  RingMerge m = merge();
  EXPECT_EQ(m.consume(ids), 0U) << "ring 1 was never read to its end: its record may be older";
  rings[1].commit(busy);
  EXPECT_EQ(m.consume(ids), 3U);
  EXPECT_EQ(ids.seen, (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST_F(RingMergeTest, ConsumeAllTakesWhatIsVisibleWithoutWaiting) {
  rings[0].append(10, 1);
  rings[0].append(20, 2);
  rings[1].reserve(15, 3);
  now_ms = 5;
  RingMerge m = merge();
  EXPECT_EQ(m.consume_all(ids), 2U);
  EXPECT_EQ(ids.seen, (std::vector<std::uint64_t>{1, 2}));
}

TEST_F(RingMergeTest, SkipsDiscardedRecords) {
  rings[0].append(10, 1);
  rings[0].discard(rings[0].reserve(11, 99));
  rings[0].append(12, 2);
  RingMerge m = merge();
  EXPECT_EQ(m.consume(ids), 2U);
  EXPECT_EQ(ids.seen, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(rings[0].consumer_pos(), rings[0].producer_pos());
}

TEST_F(RingMergeTest, ReadsARecordThatWrapsAroundTheEnd) {
  rings[0].skip(4096 - 8);  // the next header fills the last 8 bytes, the payload wraps
  rings[0].append(10, 7);
  RingMerge m = merge();
  EXPECT_EQ(m.consume(ids), 1U);
  EXPECT_EQ(ids.seen, std::vector<std::uint64_t>{7});
}

TEST_F(RingMergeTest, PeakFillIsTheFullestRingAtAConsumeSinceTheLastTake) {
  EXPECT_EQ(merge().take_peak_fill(), 0.0) << "nothing drained yet";
  for (int i = 0; i < 64; ++i) {
    rings[1].append(10 + i, static_cast<std::uint64_t>(i));  // 24 bytes each, of 4096
  }
  rings[0].append(5, 100);
  RingMerge m = merge();
  EXPECT_EQ(m.consume(ids), 65U);
  EXPECT_EQ(m.take_peak_fill(), 64.0 * 24 / 4096) << "ring 1, the fuller, before it was drained";
  EXPECT_EQ(m.take_peak_fill(), 0.0) << "taken: reset";
  rings[0].append(500, 101);
  const std::uint64_t busy = rings[0].reserve(501, 102);
  EXPECT_EQ(m.consume(ids), 1U);
  EXPECT_EQ(m.take_peak_fill(), 2.0 * 24 / 4096) << "a record being written takes its space";
  rings[0].commit(busy);
  EXPECT_EQ(m.consume(ids), 1U);
  EXPECT_EQ(m.take_peak_fill(), 24.0 / 4096);
}

}  // namespace
}  // namespace tcptrail
