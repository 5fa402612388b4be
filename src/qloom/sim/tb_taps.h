// The design-internal signals the stream harness (tb_stream.cpp) watches, kept out of it.
//
// qloom_taps() is defined in the generated qloom_tb_taps.cpp, the only file of the testbench
// that includes the design's internal (root) header: monitors read a signal's value (at most 64
// bits), probes read a stream's handshake (nonzero when tvalid && tready). The harness then
// compiles identically for every design with the same ports, and its object is cached.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "verilated.h"

struct QloomTap {
    const char* name;
    std::function<uint64_t()> read;
};

// top: the Verilated model (QLOOM_TOP*); appends the design's monitors and probes.
void qloom_taps(void* top, std::vector<QloomTap>& monitors, std::vector<QloomTap>& probes);

template <typename T>
uint64_t qloom_u64(const T& v) {
    return static_cast<uint64_t>(v);
}
template <std::size_t N>
uint64_t qloom_u64(const VlWide<N>& v) {
    return static_cast<uint64_t>(v.at(0)) | (N > 1 ? static_cast<uint64_t>(v.at(1)) << 32 : 0);
}
