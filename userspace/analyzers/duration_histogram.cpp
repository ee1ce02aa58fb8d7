#include "analyzers/duration_histogram.hpp"

#include <algorithm>
#include <bit>

namespace tcptrail {

namespace {

constexpr std::uint64_t kTopUs = (std::uint64_t{1} << 40) - 1;

std::size_t bucket_of(std::uint64_t us) {
  us = std::min(us, kTopUs);
  if (us < 4) {
    return us;
  }
  // Octave k >= 2 holds [2^k, 2^(k+1)); its two bits below the leading one pick a quarter.
  const unsigned k = static_cast<unsigned>(std::bit_width(us)) - 1;
  return 4 + (k - 2) * 4 + ((us >> (k - 2)) & 3);
}

std::uint64_t midpoint_of(std::size_t bucket) {
  if (bucket < 4) {
    return bucket;
  }
  const auto shift = static_cast<unsigned>((bucket - 4) / 4);
  const std::uint64_t quarter = (bucket - 4) % 4;
  const std::uint64_t lower = (4 + quarter) << shift;
  const std::uint64_t upper = (5 + quarter) << shift;
  return lower + (upper - lower) / 2;
}

}  // namespace

void DurationHistogram::add(std::uint64_t us) {
  const std::size_t bucket = bucket_of(us);
  // A row's counts saturate rather than wrap: 4 billion samples in one bucket is far beyond a run.
  if (counts_[bucket] != UINT32_MAX) {
    ++counts_[bucket];
    ++samples_;
  }
  min_us_ = std::min(min_us_, us);
  max_us_ = std::max(max_us_, us);
}

std::uint64_t DurationHistogram::quantile(std::uint64_t rank) const {
  std::uint64_t seen = 0;
  for (std::size_t bucket = 0; bucket < kBuckets; ++bucket) {
    seen += counts_[bucket];
    if (seen >= rank) {
      // The top bucket has no upper bound: its honest value is the largest sample.
      return bucket + 1 == kBuckets ? max_us_ : std::clamp(midpoint_of(bucket), min_us_, max_us_);
    }
  }
  return max_us_;
}

std::optional<Percentiles> DurationHistogram::percentiles() const {
  if (samples_ == 0) {
    return std::nullopt;
  }
  // Nearest rank: the smallest sample with at least q of all samples at or below it.
  auto rank = [this](std::uint64_t percent) { return (samples_ * percent + 99) / 100; };
  return Percentiles{quantile(rank(50)), quantile(rank(90)), quantile(rank(99))};
}

}  // namespace tcptrail
