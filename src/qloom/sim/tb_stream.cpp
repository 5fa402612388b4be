// qloom generic AXI-Stream testbench for Verilator (template; driven by qloom/sim/verilator.py).
//
// The design-specific part lives in the generated header qloom_tb_config.h:
//   QLOOM_TOP                 the Verilated class (e.g. Vqloom_fifo)
//   QLOOM_IN_STREAMS(X)       X(prefix, width) for each input stream  (prefix_tdata/tvalid/tready)
//   QLOOM_OUT_STREAMS(X)      X(prefix, width) for each output stream
//   QLOOM_CLK, QLOOM_RST_N    clock and active-low reset port names
//   QLOOM_TRACE               1 when built with --trace (VCD)
// The monitored internal signals and the probed internal streams (whose first frame is timed:
// the cycles of its first and its N-th handshake) come from qloom_taps() in the generated
// qloom_tb_taps.cpp (tb_taps.h): only that file sees the design's internals, so this harness
// compiles the same for every design with the same ports and its object is reused.
//
// Usage: Vtb <run-config-file> [+verilator+... plusargs]
// The run configuration is a text file of "key value..." lines:
//   seed N | max_cycles N | max_idle N | drain N | reset_cycles N | trace PATH | summary PATH
//   in  IDX PROB DATA_PATH CYCLES_PATH      (DATA_PATH: one hex word per line)
//   out IDX PROB EXPECTED DATA_PATH         (written: "cycle hex" per received beat)
//   probe IDX N                             (N beats per frame on probe IDX; default 1)
// Probes are sampled where the handshakes of the ports are (the same cycle numbering) and stop
// once every probe saw N beats; they do not count as activity for the deadlock bound.
// Input valid: a pending beat is offered with probability PROB per cycle and then held until it
// transfers (AXI rule). Output ready: asserted with probability PROB per cycle until EXPECTED beats
// arrived, then held high for `drain` more cycles to catch surplus beats.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "verilated.h"
#include "qloom_tb_config.h"
#include "tb_taps.h"
#if QLOOM_TRACE
#include "verilated_vcd_c.h"
#endif

namespace {

using Word = uint32_t;

// ---- port access for every Verilator port type (CData/SData/IData/QData/VlWide) -------------
template <typename T>
void put_port(T& port, const Word* w) {
    uint64_t v = w[0];
    if (sizeof(T) > 4) v |= static_cast<uint64_t>(w[1]) << 32;
    port = static_cast<T>(v);
}
template <std::size_t N>
void put_port(VlWide<N>& port, const Word* w) {
    for (std::size_t i = 0; i < N; ++i) port.at(i) = w[i];
}
template <typename T>
void get_port(const T& port, Word* w) {
    const uint64_t v = static_cast<uint64_t>(port);
    w[0] = static_cast<Word>(v);
    if (sizeof(T) > 4) w[1] = static_cast<Word>(v >> 32);
}
template <std::size_t N>
void get_port(const VlWide<N>& port, Word* w) {
    for (std::size_t i = 0; i < N; ++i) w[i] = port.at(i);
}
int words_for(int width) { return width <= 64 ? 2 : (width + 31) / 32; }

// ---- hex text <-> little-endian words ---------------------------------------------------------
bool parse_hex(const std::string& line, int width, Word* out, int nwords) {
    for (int i = 0; i < nwords; ++i) out[i] = 0;
    int bit = 0;
    bool any = false;
    for (auto it = line.rbegin(); it != line.rend(); ++it) {
        const char c = *it;
        int v;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        else if (c == '_' || c == ' ' || c == '\r' || c == '\t') continue;
        else return false;
        any = true;
        if (bit < nwords * 32) out[bit / 32] |= static_cast<Word>(v) << (bit % 32);
        bit += 4;
    }
    // keep only `width` bits (Verilator needs the unused top bits clear)
    for (int b = width; b < nwords * 32; ++b) out[b / 32] &= ~(static_cast<Word>(1) << (b % 32));
    return any;
}

std::string format_hex(const Word* w, int width) {
    static const char* digits = "0123456789abcdef";
    const int ndig = (width + 3) / 4;
    std::string s(ndig, '0');
    for (int d = 0; d < ndig; ++d) {
        const int bit = d * 4;
        s[ndig - 1 - d] = digits[(w[bit / 32] >> (bit % 32)) & 0xF];
    }
    return s;
}

struct InStream {
    const char* name;
    int width;
    int nwords;
    std::function<void(const Word*)> set_data;
    CData* valid;
    const CData* ready;
    std::vector<Word> beats;
    size_t n = 0;
    size_t pos = 0;
    bool vld = false;
    double prob = 1.0;
    std::string cycles_path;
    std::vector<uint64_t> cycles;
};

struct OutStream {
    const char* name;
    int width;
    int nwords;
    std::function<void(Word*)> get_data;
    const CData* valid;
    CData* ready;
    size_t expected = 0;
    size_t got = 0;
    double prob = 1.0;
    std::string path;
    FILE* f = nullptr;
    bool rdy = false;
    bool stalled = false;  // valid && !ready in the previous cycle
    std::vector<Word> prev;
    std::vector<Word> cur;
};

struct Probe {
    const char* name;
    std::function<bool()> fire;  // valid && ready this cycle
    uint64_t n = 1;              // beats of the first frame
    uint64_t count = 0;
    int64_t first = -1;  // cycle of the first handshake
    int64_t last = -1;   // cycle of the n-th handshake
};

struct Monitor {
    const char* name;
    std::function<uint64_t()> read;
    uint64_t max = 0;
    uint64_t last = 0;
};

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "qloom tb: %s\n", msg.c_str());
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) die("usage: Vtb RUN_CONFIG [+verilator+...]");
    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);  // +verilator+rand+reset+2 +verilator+seed+N
    auto top = std::make_unique<QLOOM_TOP>(ctx.get());

    std::vector<InStream> ins;
    std::vector<OutStream> outs;
    std::vector<Monitor> mons;
    std::vector<Probe> probes;
#define QLOOM_X_IN(prefix, w)                                                                   \
    ins.push_back(InStream{#prefix, w, words_for(w),                                            \
                           [&](const Word* d) { put_port(top->prefix##_tdata, d); },            \
                           &top->prefix##_tvalid, &top->prefix##_tready});
#define QLOOM_X_OUT(prefix, w)                                                                  \
    outs.push_back(OutStream{#prefix, w, words_for(w),                                          \
                             [&](Word* d) { get_port(top->prefix##_tdata, d); },                \
                             &top->prefix##_tvalid, &top->prefix##_tready});
    QLOOM_IN_STREAMS(QLOOM_X_IN)
    QLOOM_OUT_STREAMS(QLOOM_X_OUT)
    {
        std::vector<QloomTap> mon_taps, probe_taps;
        qloom_taps(top.get(), mon_taps, probe_taps);
        for (auto& t : mon_taps) mons.push_back(Monitor{t.name, t.read});
        for (auto& t : probe_taps)
            probes.push_back(Probe{t.name, [r = t.read]() { return r() != 0; }});
    }

    // ---- run configuration ---------------------------------------------------------------------
    uint64_t seed = 0, max_cycles = 100000000ULL, max_idle = 100000, drain = 16, reset_cycles = 4;
    std::string trace_path, summary_path;
    {
        std::ifstream cf(argv[1]);
        if (!cf) die(std::string("cannot open run config ") + argv[1]);
        std::string line;
        while (std::getline(cf, line)) {
            std::istringstream ls(line);
            std::string key;
            if (!(ls >> key)) continue;
            if (key == "seed") ls >> seed;
            else if (key == "max_cycles") ls >> max_cycles;
            else if (key == "max_idle") ls >> max_idle;
            else if (key == "drain") ls >> drain;
            else if (key == "reset_cycles") ls >> reset_cycles;
            else if (key == "trace") ls >> trace_path;
            else if (key == "summary") ls >> summary_path;
            else if (key == "in") {
                size_t idx;
                double prob;
                std::string path, cpath;
                ls >> idx >> prob >> path >> cpath;
                if (idx >= ins.size()) die("input stream index out of range");
                InStream& s = ins[idx];
                s.prob = prob;
                s.cycles_path = cpath;
                std::ifstream df(path);
                if (!df) die("cannot open input data " + path);
                std::string h;
                std::vector<Word> w(s.nwords);
                while (std::getline(df, h)) {
                    if (!parse_hex(h, s.width, w.data(), s.nwords)) continue;
                    s.beats.insert(s.beats.end(), w.begin(), w.end());
                    s.n++;
                }
            } else if (key == "out") {
                size_t idx;
                double prob;
                size_t expected;
                std::string path;
                ls >> idx >> prob >> expected >> path;
                if (idx >= outs.size()) die("output stream index out of range");
                outs[idx].prob = prob;
                outs[idx].expected = expected;
                outs[idx].path = path;
            } else if (key == "probe") {
                size_t idx;
                uint64_t n;
                ls >> idx >> n;
                if (idx >= probes.size()) die("probe index out of range");
                probes[idx].n = n < 1 ? 1 : n;
            } else die("unknown run config key " + key);
        }
    }
    for (auto& o : outs) {
        o.f = std::fopen(o.path.c_str(), "w");
        if (!o.f) die("cannot write output file " + o.path);
        o.prev.assign(o.nwords, 0);
        o.cur.assign(o.nwords, 0);
    }

#if QLOOM_TRACE
    std::unique_ptr<VerilatedVcdC> tfp;
    if (!trace_path.empty()) {
        ctx->traceEverOn(true);
        tfp = std::make_unique<VerilatedVcdC>();
        top->trace(tfp.get(), 99);
        tfp->open(trace_path.c_str());
    }
#define QLOOM_DUMP(t) \
    if (tfp) tfp->dump(t)
#else
#define QLOOM_DUMP(t)
#endif

    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    auto chance = [&](double p) { return p >= 1.0 || (p > 0.0 && uni(rng) < p); };

    // ---- reset -----------------------------------------------------------------------------------
    uint64_t t = 0;  // half-cycle time for the trace
    for (auto& s : ins) *s.valid = 0;
    for (auto& o : outs) *o.ready = 0;
    top->QLOOM_RST_N = 0;
    for (uint64_t i = 0; i < reset_cycles; ++i) {
        top->QLOOM_CLK = 0;
        top->eval();
        QLOOM_DUMP(t++);
        top->QLOOM_CLK = 1;
        top->eval();
        QLOOM_DUMP(t++);
    }
    top->QLOOM_RST_N = 1;

    // ---- main loop -----------------------------------------------------------------------------
    size_t probes_open = probes.size();  // probes still waiting for their n-th beat
    uint64_t cycle = 0, idle = 0, out_done_cycle = 0, drained = 0;
    bool out_done = false, done = false, deadlock = false, timeout = false;
    std::vector<std::string> violations;
    auto all_received = [&]() {
        for (auto& o : outs)
            if (o.got < o.expected) return false;
        return true;
    };
    auto all_consumed = [&]() {
        for (auto& s : ins)
            if (s.pos < s.n) return false;
        return true;
    };
    while (true) {
        if (done && drained >= drain) break;
        if (cycle >= max_cycles) {
            timeout = true;
            break;
        }
        // drive inputs for this cycle
        for (auto& s : ins) {
            if (!s.vld && s.pos < s.n && chance(s.prob)) s.vld = true;
            if (s.vld) s.set_data(&s.beats[s.pos * s.nwords]);
            *s.valid = s.vld ? 1 : 0;
        }
        for (auto& o : outs) {
            o.rdy = o.got >= o.expected ? true : chance(o.prob);
            *o.ready = o.rdy ? 1 : 0;
        }
        top->QLOOM_CLK = 0;
        top->eval();
        QLOOM_DUMP(t++);
        // sample the handshakes (combinational paths have settled)
        bool moved = false;
        for (auto& s : ins) {
            if (s.vld && *s.ready) {
                s.cycles.push_back(cycle);
                s.pos++;
                s.vld = false;
                moved = true;
            }
        }
        for (auto& o : outs) {
            const bool v = *o.valid != 0;
            if (v) o.get_data(o.cur.data());
            if (o.stalled && violations.size() < 20) {
                if (!v)
                    violations.push_back(std::string(o.name) + ": tvalid dropped before transfer at cycle " +
                                         std::to_string(cycle));
                else if (o.cur != o.prev)
                    violations.push_back(std::string(o.name) + ": tdata changed while stalled at cycle " +
                                         std::to_string(cycle));
            }
            if (v && o.rdy) {
                std::fprintf(o.f, "%llu %s\n", static_cast<unsigned long long>(cycle),
                             format_hex(o.cur.data(), o.width).c_str());
                o.got++;
                moved = true;
            }
            o.stalled = v && !o.rdy;
            if (o.stalled) o.prev = o.cur;
        }
        if (probes_open) {
            for (auto& p : probes) {
                if (p.count >= p.n || !p.fire()) continue;
                if (p.count == 0) p.first = static_cast<int64_t>(cycle);
                if (++p.count == p.n) {
                    p.last = static_cast<int64_t>(cycle);
                    probes_open--;
                }
            }
        }
        for (auto& m : mons) {
            const uint64_t v = m.read();
            if (v != m.last) moved = true;  // internal progress counts as activity
            m.last = v;
            if (v > m.max) m.max = v;
        }
        top->QLOOM_CLK = 1;
        top->eval();
        QLOOM_DUMP(t++);
        cycle++;
        if (!out_done && all_received()) {
            out_done = true;
            out_done_cycle = cycle;
        }
        if (done) drained++;
        else if (out_done && all_consumed()) done = true;
        idle = moved ? 0 : idle + 1;
        if (!done && idle >= max_idle) {
            deadlock = true;
            break;
        }
    }
    top->final();
#if QLOOM_TRACE
    if (tfp) tfp->close();
#endif

    // ---- results -------------------------------------------------------------------------------
    for (auto& o : outs) std::fclose(o.f);
    for (auto& s : ins) {
        if (s.cycles_path.empty()) continue;
        FILE* f = std::fopen(s.cycles_path.c_str(), "w");
        if (!f) die("cannot write " + s.cycles_path);
        for (auto c : s.cycles) std::fprintf(f, "%llu\n", static_cast<unsigned long long>(c));
        std::fclose(f);
    }
    FILE* sf = summary_path.empty() ? stdout : std::fopen(summary_path.c_str(), "w");
    if (!sf) die("cannot write summary " + summary_path);
    std::fprintf(sf, "cycles %llu\n", static_cast<unsigned long long>(out_done ? out_done_cycle : cycle));
    std::fprintf(sf, "total_cycles %llu\n", static_cast<unsigned long long>(cycle));
    std::fprintf(sf, "done %d\ndeadlock %d\ntimeout %d\n", done ? 1 : 0, deadlock ? 1 : 0,
                 timeout ? 1 : 0);
    for (size_t i = 0; i < ins.size(); ++i)
        std::fprintf(sf, "consumed %zu %zu\n", i, ins[i].pos);
    for (size_t i = 0; i < outs.size(); ++i) std::fprintf(sf, "received %zu %zu\n", i, outs[i].got);
    if (!done) {
        for (auto& s : ins)
            if (s.pos < s.n)
                std::fprintf(sf, "waiting input %s: %zu of %zu beats consumed, tvalid=%d tready=%d\n",
                             s.name, s.pos, s.n, *s.valid ? 1 : 0, *s.ready ? 1 : 0);
        for (auto& o : outs)
            if (o.got < o.expected)
                std::fprintf(sf, "waiting output %s: %zu of %zu beats received, tvalid=%d\n", o.name,
                             o.got, o.expected, *o.valid ? 1 : 0);
    }
    for (auto& v : violations) std::fprintf(sf, "violation %s\n", v.c_str());
    for (auto& m : mons)
        std::fprintf(sf, "monitor %s %llu %llu\n", m.name, static_cast<unsigned long long>(m.max),
                     static_cast<unsigned long long>(m.last));
    for (auto& p : probes)
        std::fprintf(sf, "probe %s %lld %lld\n", p.name, static_cast<long long>(p.first),
                     static_cast<long long>(p.last));
    if (sf != stdout) std::fclose(sf);
    return 0;
}
