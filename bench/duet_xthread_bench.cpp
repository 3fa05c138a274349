// duet side of the cross-thread workload (W5): call_soon_threadsafe from a
// foreign thread; the loop blocks in epoll and is woken through its
// eventfd, coalesced (see loop.hpp).
#include <duet/duet.hpp>

#include "xthread_common.hpp"

namespace {

void round_trip(const bench::Args& args, bool same_cpu) {
  auto loop = duet::native::new_event_loop();
  bench::RoundTrip rt;
  bench::measure_round_trip(
      "duet", args, same_cpu, rt, [&](int i) { loop->call_soon_threadsafe([&rt, i] { rt.done(i); }); },
      [&] { loop->run_forever(); }, [&] { loop->call_soon_threadsafe([&] { loop->stop(); }); });
}

void throughput(const bench::Args& args) {
  auto loop = duet::native::new_event_loop();
  bench::Throughput tp;
  bench::measure_throughput(
      "duet", args, tp,
      [&] {
        loop->call_soon_threadsafe([&] {
          if (tp.counted()) loop->stop();
        });
      },
      [&] { loop->run_forever(); });
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  if (args.wants("xthread_rtt_cross_cpu")) round_trip(args, false);
  if (args.wants("xthread_rtt_same_cpu")) round_trip(args, true);
  if (args.wants("xthread_throughput")) throughput(args);
}
