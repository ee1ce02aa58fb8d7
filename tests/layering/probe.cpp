// Includes one header from a layer's point of view: tests/CMakeLists.txt builds it as a target
// that links one layer's library, to show which headers that layer can and cannot see.
#include TCPTRAIL_PROBE_HEADER

int tcptrail_layering_probe() {
  return 0;
}
