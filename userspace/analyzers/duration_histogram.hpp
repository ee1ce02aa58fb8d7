// Durations in microseconds, counted into fixed log-linear buckets so that a summary row costs
// the same memory however many connections it counts (624 bytes). Exact below 4 us; above, four
// buckets per power of two, so a percentile is reported within 12.5% of the sample it names
// (the midpoint of its bucket, kept inside the smallest and largest sample seen). Samples from
// 2^40 us (12.7 days) up share the top bucket, which reports the largest sample.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "tcptrail/records.hpp"

namespace tcptrail {

class DurationHistogram {
public:
  void add(std::uint64_t us);
  // Nearest-rank p50, p90 and p99; nullopt before the first sample.
  [[nodiscard]] std::optional<Percentiles> percentiles() const;

  static constexpr std::size_t kBuckets = 156;

private:
  [[nodiscard]] std::uint64_t quantile(std::uint64_t rank) const;

  std::array<std::uint32_t, kBuckets> counts_{};
  std::uint64_t samples_ = 0;
  std::uint64_t min_us_ = UINT64_MAX;
  std::uint64_t max_us_ = 0;
};

}  // namespace tcptrail
