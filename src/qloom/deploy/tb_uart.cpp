// Testbench of qloom_board_top (qloom.deploy.board.build_board_sim): a host at the far end of
// the serial line. It drives the board's UART receive pin bit by bit (8N1, LSB first) with the
// bytes to send, with random idle gaps between bytes, and decodes the board's transmit pin
// (falling edge, then a sample in the middle of every bit, stop bit checked). One clock cycle
// = one PLL-output cycle (the PLL model passes the clock through).
//
//   Vtb IN OUT FRAME_IN FRAME_OUT WINDOW CLKS_PER_BIT GAP_MAX MAX_CYCLES LED_LOW [+verilator+...]
//
// File mode (IN, OUT are files): the bytes of IN are sent keeping at most WINDOW frames in
// flight (frame k + WINDOW is sent only once frame k's result bytes have all arrived); the
// decoded bytes go to OUT; one JSON line of statistics goes to stdout.
//
// Pipe mode (IN = OUT = "-"): a live serial line for a host program (qloom.deploy.board.SimLink
// around qloom.deploy.client.run_frames). Bytes are sent as they arrive on stdin, so the host
// does the flow control; decoded bytes are written to stdout as they arrive. While every frame
// sent so far has its result, the board has nothing to do: the testbench then waits for stdin
// without clocking, so a slow host costs no simulated time. It ends when stdin is closed and
// the results of every whole frame sent have been written (or at MAX_CYCLES); the statistics
// line goes to stderr.
//
// Statistics: cycles, bytes_sent, bytes_received, host_frame_errors, led_err, max_rx_fill,
// max_in_flight, timed_out.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "Vqloom_board_top.h"
#include "Vqloom_board_top___024root.h"
#include "verilated.h"

static const uint64_t SETTLE = 200;     // cycles before the host starts listening and sending
static const uint64_t POLL_EVERY = 64;  // pipe mode: cycles between looks at stdin when busy

static std::vector<uint8_t> read_file(const char* path) {
    std::vector<uint8_t> v;
    FILE* f = std::fopen(path, "rb");
    if (!f) {
        std::perror(path);
        std::exit(2);
    }
    int c;
    while ((c = std::fgetc(f)) != EOF) v.push_back(static_cast<uint8_t>(c));
    std::fclose(f);
    return v;
}

// Pipe mode: append what stdin holds to `q`; wait for it first when `block`. Returns false
// once stdin is closed.
static bool pull_stdin(std::vector<uint8_t>& q, bool block) {
    uint8_t buf[4096];
    if (block) {
        struct pollfd p = {STDIN_FILENO, POLLIN, 0};
        while (poll(&p, 1, -1) < 0 && errno == EINTR) {
        }
    }
    for (;;) {
        const ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n > 0) {
            q.insert(q.end(), buf, buf + n);
            if (static_cast<size_t>(n) < sizeof buf) return true;
        } else if (n == 0) {
            return false;
        } else if (errno == EINTR) {
            continue;
        } else {
            return true;  // EAGAIN: nothing more for now
        }
    }
}

int main(int argc, char** argv) {
    if (argc < 10) {
        std::fprintf(stderr,
                     "usage: %s IN OUT FRAME_IN FRAME_OUT WINDOW CLKS_PER_BIT GAP_MAX "
                     "MAX_CYCLES LED_LOW [+verilator+...]\n",
                     argv[0]);
        return 2;
    }
    const bool pipe = std::strcmp(argv[1], "-") == 0;
    std::vector<uint8_t> tx_bytes;
    if (!pipe) tx_bytes = read_file(argv[1]);
    const char* out_path = argv[2];
    const long frame_in = std::atol(argv[3]);
    const long frame_out = std::atol(argv[4]);
    const long window = pipe ? LONG_MAX / 2 : std::atol(argv[5]);
    const long cpb = std::atol(argv[6]);
    const long gap_max = std::atol(argv[7]);
    const uint64_t max_cycles = std::strtoull(argv[8], nullptr, 10);
    const bool led_low = std::atoi(argv[9]) != 0;
    if (frame_in <= 0 || frame_out <= 0 || window <= 0 || cpb < 2) {
        std::fprintf(stderr, "bad arguments\n");
        return 2;
    }
    bool in_open = pipe;  // pipe mode: stdin may still bring bytes
    if (pipe) fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
    FILE* out = pipe ? stdout : std::fopen(out_path, "wb");
    if (!out) {
        std::perror(out_path);
        return 2;
    }

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);  // +verilator+seed+N +verilator+rand+reset+2
    auto top = std::make_unique<Vqloom_board_top>(ctx.get());
    std::mt19937_64 rng(12345u + static_cast<uint64_t>(ctx->randSeed()));

    // host transmitter: 10 symbols per byte (start, 8 data, stop), then an idle gap
    size_t next_byte = 0;  // index of the byte being / to be sent
    int sym = -1;          // -1: idle between bytes; 0..9: the symbol on the line
    long left = 0;         // cycles the current symbol / gap still lasts
    int line = 1;
    // host receiver
    size_t received = 0;
    int rstate = 0;  // 0 idle, 1 receiving
    long rcnt = 0;
    int rbit = 0;
    unsigned rshift = 0;
    int prev_tx = 1;
    long host_ferr = 0;
    long max_fill = 0;
    long max_in_flight = 0;

    // every result byte of the whole frames sent (or to be sent) has arrived
    auto all_results = [&]() {
        const size_t frames = tx_bytes.size() / static_cast<size_t>(frame_in);
        return received >= frames * static_cast<size_t>(frame_out);
    };

    top->clk_in = 0;
    top->uart_rx = 1;
    top->eval();
    uint64_t cycle = 0;
    bool timed_out = false;
    for (;;) {
        if (!in_open && all_results() && next_byte >= tx_bytes.size() && rstate == 0) break;
        if (cycle >= max_cycles) {
            timed_out = true;
            break;
        }
        // ---- pipe mode: take what the host has written
        if (in_open && cycle >= SETTLE && sym < 0 && left == 0 && next_byte >= tx_bytes.size()) {
            const long sent = static_cast<long>(next_byte) / frame_in;
            const long done = static_cast<long>(received) / frame_out;
            if (sent <= done && rstate == 0) {
                in_open = pull_stdin(tx_bytes, true);  // the board is idle: wait, no clocks
            } else if (cycle % POLL_EVERY == 0) {
                in_open = pull_stdin(tx_bytes, false);
            }
            if (!in_open) continue;  // re-check the end condition
        }
        // ---- what the host puts on the line for this cycle
        if (cycle < SETTLE) {
            // the board's power-on reset: the host opens the port only afterwards
        } else if (left == 0) {
            if (sym >= 0 && sym < 9) {
                ++sym;
            } else if (sym == 9) {  // stop bit done: byte sent, idle gap
                ++next_byte;
                sym = -1;
                left = gap_max > 0 ? static_cast<long>(rng() % (gap_max + 1)) : 0;
            }
            if (sym == -1 && left == 0 && next_byte < tx_bytes.size()) {
                const long frame = static_cast<long>(next_byte) / frame_in;
                const long done = static_cast<long>(received) / frame_out;
                if (frame < done + window) {
                    sym = 0;
                    if (frame - done + 1 > max_in_flight) max_in_flight = frame - done + 1;
                }
            }
            if (sym >= 0) left = cpb;
        }
        if (sym < 0) {
            line = 1;
        } else if (sym == 0) {
            line = 0;
        } else if (sym == 9) {
            line = 1;
        } else {
            line = (tx_bytes[next_byte] >> (sym - 1)) & 1;
        }
        if (left > 0) --left;
        top->uart_rx = line;
        // ---- one clock cycle
        top->clk_in = 1;
        top->eval();
        top->clk_in = 0;
        top->eval();
        ++cycle;
        // ---- host receiver samples the board's transmit pin
        const int txv = cycle < SETTLE ? 1 : (top->uart_tx & 1);
        if (rstate == 0) {
            if (prev_tx == 1 && txv == 0) {
                rstate = 1;
                rcnt = 0;
                rbit = 0;
                rshift = 0;
            }
        } else {
            ++rcnt;
            // sample points: cpb/2 (start), then every cpb cycles (8 data bits, stop bit)
            if (rcnt == cpb / 2 + static_cast<long>(rbit) * cpb) {
                if (rbit == 0) {
                    if (txv != 0) rstate = 0;  // glitch, not a start bit
                } else if (rbit <= 8) {
                    rshift |= static_cast<unsigned>(txv) << (rbit - 1);
                } else {
                    if (txv == 1) {
                        std::fputc(static_cast<int>(rshift), out);
                        if (pipe) std::fflush(out);
                        ++received;
                    } else {
                        ++host_ferr;
                    }
                    rstate = 0;
                }
                ++rbit;
            }
        }
        prev_tx = txv;
        const long fill = static_cast<long>(top->rootp->qloom_board_top__DOT__rx_count);
        if (cycle > SETTLE && fill > max_fill) max_fill = fill;
    }
    // let the line settle a few bit times so a late error would still light the LED
    for (long i = 0; i < 4 * cpb; ++i) {
        top->uart_rx = 1;
        top->clk_in = 1;
        top->eval();
        top->clk_in = 0;
        top->eval();
    }
    const int led = (top->led_err & 1) ^ (led_low ? 1 : 0);
    if (pipe) {
        std::fflush(out);
    } else {
        std::fclose(out);
    }
    top->final();
    std::fprintf(pipe ? stderr : stdout,
                 "{\"cycles\": %llu, \"bytes_sent\": %zu, \"bytes_received\": %zu, "
                 "\"host_frame_errors\": %ld, \"led_err\": %d, \"max_rx_fill\": %ld, "
                 "\"max_in_flight\": %ld, \"timed_out\": %d}\n",
                 static_cast<unsigned long long>(cycle), next_byte, received, host_ferr, led,
                 max_fill, max_in_flight, timed_out ? 1 : 0);
    return 0;
}
