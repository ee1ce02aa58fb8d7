#include "analyzers/duration_histogram.hpp"

#include <gtest/gtest.h>

namespace tcptrail {
namespace {

TEST(DurationHistogram, NothingBeforeTheFirstSample) {
  EXPECT_FALSE(DurationHistogram{}.percentiles().has_value());
}

TEST(DurationHistogram, OneSampleIsReportedExactly) {
  DurationHistogram histogram;
  histogram.add(123'457);
  EXPECT_EQ(histogram.percentiles(), (Percentiles{123'457, 123'457, 123'457}));
}

TEST(DurationHistogram, SmallValuesAreExact) {
  DurationHistogram histogram;
  for (std::uint64_t us : {0, 1, 2, 3}) {
    histogram.add(us);
  }
  EXPECT_EQ(histogram.percentiles(), (Percentiles{1, 3, 3}));
}

// Every value from 4 us to 2^20 us, on its own: the reported value is within 12.5% of it.
TEST(DurationHistogram, WithinAnEighthOfTheSample) {
  for (std::uint64_t us = 4; us < (1u << 20); us += us / 64 + 1) {
    DurationHistogram histogram;
    histogram.add(1);
    histogram.add(us);
    histogram.add(UINT32_MAX);
    const std::uint64_t p50 = histogram.percentiles()->p50_us;
    ASSERT_LE(p50 * 8, us * 9) << us;
    ASSERT_GE(p50 * 8, us * 7) << us;
  }
}

TEST(DurationHistogram, NearestRank) {
  DurationHistogram histogram;
  for (int n = 0; n < 89; ++n) {
    histogram.add(1);
  }
  for (int n = 0; n < 10; ++n) {
    histogram.add(2);
  }
  histogram.add(3);
  // 100 samples: the 50th and 90th are 1 and 2, the 99th is 2, the 100th 3.
  EXPECT_EQ(histogram.percentiles(), (Percentiles{1, 2, 2}));
  histogram.add(3);
  // 101: rank ceil(0.99 * 101) = 100, a 3.
  EXPECT_EQ(histogram.percentiles()->p99_us, 3u);
}

TEST(DurationHistogram, HugeValuesShareTheTopBucketButKeepTheLargest) {
  DurationHistogram histogram;
  histogram.add(std::uint64_t{1} << 50);
  histogram.add(std::uint64_t{1} << 45);
  const Percentiles p = *histogram.percentiles();
  EXPECT_EQ(p.p50_us, std::uint64_t{1} << 50) << "the top bucket's value is the largest sample";
  EXPECT_EQ(p.p99_us, std::uint64_t{1} << 50);
}

}  // namespace
}  // namespace tcptrail
