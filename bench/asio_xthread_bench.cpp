// Boost.Asio side of the cross-thread workload (W5): asio::post from a
// foreign thread to an io_context run by the loop thread (a work guard
// keeps run() blocked in its reactor when idle, as duet's loop blocks).
// clang-format off
#include <utility>  // Boost 1.74's asio needs it first with g++ 12
// clang-format on

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <optional>

#include "xthread_common.hpp"

namespace asio = boost::asio;

namespace {

void round_trip(const bench::Args& args, bool same_cpu) {
  asio::io_context ctx;  // default hint: safe for posts from other threads
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard(ctx.get_executor());
  bench::RoundTrip rt;
  bench::measure_round_trip(
      "asio", args, same_cpu, rt, [&](int i) { asio::post(ctx, [&rt, i] { rt.done(i); }); }, [&] { ctx.run(); },
      [&] { asio::post(ctx, [&] { guard.reset(); }); });
}

void throughput(const bench::Args& args) {
  asio::io_context ctx;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard(ctx.get_executor());
  bench::Throughput tp;
  bench::measure_throughput(
      "asio", args, tp,
      [&] {
        asio::post(ctx, [&] {
          if (tp.counted()) guard.reset();
        });
      },
      [&] { ctx.run(); });
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  if (args.wants("xthread_rtt_cross_cpu")) round_trip(args, false);
  if (args.wants("xthread_rtt_same_cpu")) round_trip(args, true);
  if (args.wants("xthread_throughput")) throughput(args);
}
