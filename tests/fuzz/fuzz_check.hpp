// The one way a fuzz target reports a broken property: abort, which libFuzzer records as a crash
// together with the input.
#pragma once

#include <cstdlib>

inline void fuzz_check(bool ok) {
  if (!ok) {
    std::abort();
  }
}
