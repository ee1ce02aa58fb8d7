#include "cli/record_queue.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <thread>
#include <vector>

namespace tcptrail {
namespace {

using namespace std::chrono_literals;

class Collecting : public RecordHandler {
public:
  void on_record(std::span<const std::byte> bytes) override {
    records.emplace_back(bytes.begin(), bytes.end());
  }
  std::vector<std::vector<std::byte>> records;
};

std::vector<std::byte> record(std::size_t size, std::byte fill) {
  return std::vector<std::byte>(size, fill);
}

TEST(RecordQueue, HandsOverEveryRecordInOrderAcrossThreads) {
  RecordQueue queue(1 << 20);
  std::thread ring([&] {
    for (int i = 0; i < 10000; ++i) {
      queue.on_record(record(static_cast<std::size_t>(1 + i % 300), std::byte(i % 256)));
      if (i % 37 == 0) {
        queue.publish();
      }
    }
    queue.close();
  });
  Collecting out;
  while (queue.consume(out, 10ms)) {
  }
  ring.join();
  ASSERT_EQ(out.records.size(), 10000u);
  for (int i = 0; i < 10000; ++i) {
    ASSERT_EQ(out.records[i], record(static_cast<std::size_t>(1 + i % 300), std::byte(i % 256)))
        << "record " << i;
  }
}

TEST(RecordQueue, IsFullWhenTheCollectorIsMaxBytesBehind) {
  RecordQueue queue(1000);
  queue.on_record(record(600, std::byte{1}));
  queue.publish();
  EXPECT_FALSE(queue.full());
  queue.on_record(record(600, std::byte{2}));
  queue.publish();
  EXPECT_TRUE(queue.full());
  Collecting out;
  EXPECT_TRUE(queue.consume(out, 0ms));
  EXPECT_FALSE(queue.full());
}

TEST(RecordQueue, ATimeoutIsNotTheEndButClosingIs) {
  RecordQueue queue(1000);
  Collecting out;
  EXPECT_TRUE(queue.consume(out, 1ms)) << "nothing yet, but more may come";
  queue.on_record(record(8, std::byte{3}));
  queue.close();
  EXPECT_TRUE(queue.consume(out, 1ms)) << "what was published before closing still comes";
  EXPECT_EQ(out.records.size(), 1u);
  EXPECT_FALSE(queue.consume(out, 1ms));
}

}  // namespace
}  // namespace tcptrail
