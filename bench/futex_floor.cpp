// The machine's floor for the cross-thread round trip (W5): two threads
// ping-pong a sequence number through raw futex calls, no event loop at
// all. The same driver as the loops' round trip, with the
// "loop" being a thread that waits on a futex for the next request.
#include "xthread_common.hpp"

namespace {

void round_trip(const bench::Args& args, bool same_cpu) {
  bench::RoundTrip rt;
  std::atomic<int> request{0};
  std::atomic<bool> stop{false};
  bench::measure_round_trip(
      "reference", args, same_cpu, rt,
      [&](int i) {
        request.store(i, std::memory_order_release);
        bench::futex_wake(request);
      },
      [&] {
        int seen = 0;
        for (;;) {
          int v;
          while ((v = request.load(std::memory_order_acquire)) == seen && !stop.load()) bench::futex_wait(request, v);
          if (stop.load()) return;
          seen = v;
          rt.done(v);
        }
      },
      [&] {
        stop.store(true);
        request.store(-1);
        bench::futex_wake(request);
      });
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  if (args.wants("xthread_rtt_cross_cpu")) round_trip(args, false);
  if (args.wants("xthread_rtt_same_cpu")) round_trip(args, true);
}
