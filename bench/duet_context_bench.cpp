// duet's context variables (issue: get <= 5 ns, copy <= 5 ns, set <= 50 ns,
// propagation <= +10% on call_soon). Asio and libuv have nothing like
// context variables, so these are duet-only figures; the propagation cost
// is measured against duet's own call_soon in the same process and run.
#include <memory>
#include <string>
#include <vector>

#include <duet/duet.hpp>

#include "bench_common.hpp"

namespace {

// Keeps a value alive so the compiler cannot drop the work producing it.
template <class T>
void keep(const T& value) {
  asm volatile("" : : "g"(&value) : "memory");
}

constexpr int kVars = 10;

struct Vars {
  std::vector<std::unique_ptr<duet::ContextVar<long>>> vars;
  Vars() {
    for (int i = 0; i < kVars; ++i)
      vars.push_back(std::make_unique<duet::ContextVar<long>>("v" + std::to_string(i), 0));
  }
  // Gives every variable a value in the current context.
  void set_all() {
    for (int i = 0; i < kVars; ++i) vars[i]->set(i);
  }
};

void get(const bench::Args& args, Vars& v) {
  const long n = args.scale(20'000'000, 100'000);
  duet::Context().run([&] {
    v.set_all();
    duet::ContextVar<long>* vars[kVars];
    for (int i = 0; i < kVars; ++i) vars[i] = v.vars[i].get();
    long sum = 0;
    const double t0 = bench::now_ns();
    for (long i = 0, k = 0; i < n; ++i, k = (k + 1 == kVars ? 0 : k + 1)) sum += vars[k]->get();
    const double t1 = bench::now_ns();
    keep(sum);
    bench::report("duet", "context_get", "ns_per_get", (t1 - t0) / n, "ns");
  });
}

void copy(const bench::Args& args, Vars& v) {
  const long n = args.scale(5'000'000, 50'000);
  duet::Context().run([&] {
    v.set_all();
    const double t0 = bench::now_ns();
    for (long i = 0; i < n; ++i) {
      duet::Context c = duet::copy_context();
      keep(c);
    }
    const double t1 = bench::now_ns();
    bench::report("duet", "context_copy", "ns_per_copy", (t1 - t0) / n, "ns");
  });
}

void set(const bench::Args& args, Vars& v) {
  const long n = args.scale(5'000'000, 50'000);
  duet::Context().run([&] {
    v.set_all();
    // No snapshot taken: the map is updated in place (a task setting its
    // own variables). The token is dropped at once, like a bare var.set().
    double t0 = bench::now_ns();
    for (long i = 0; i < n; ++i) keep(v.vars[i % kVars]->set(i));
    double t1 = bench::now_ns();
    bench::report("duet", "context_set", "ns_per_set", (t1 - t0) / n, "ns");
    // After a snapshot: the 10-entry node is copied (path copying).
    const long m = n / 5;
    t0 = bench::now_ns();
    for (long i = 0; i < m; ++i) {
      duet::Context snapshot = duet::copy_context();
      keep(v.vars[i % kVars]->set(i));
    }
    t1 = bench::now_ns();
    bench::report("duet", "context_set", "ns_per_copy_then_set", (t1 - t0) / m, "ns");
  });
}

// W1's call_soon batch from one callback, run in a context holding 10
// variables and in an empty one, alternating, same loop; reports both.
void call_soon_batch(const bench::Args& args, Vars& v) {
  const long n = args.scale(1'000'000, 10'000);
  auto loop = duet::native::new_event_loop();
  duet::Context empty;
  duet::Context full;
  full.run([&] { v.set_all(); });
  double best[2] = {1e300, 1e300};
  for (int round = 0; round < 6; ++round) {
    const int which = round % 2;
    long count = 0;
    const double t0 = bench::now_ns();
    loop->call_soon(which ? full : empty, [&] {
      for (long i = 0; i < n; ++i) loop->call_soon([&count] { ++count; });
      loop->call_soon([&] { loop->stop(); });
    });
    loop->run_forever();
    const double t1 = bench::now_ns();
    if (count != n) std::abort();
    if (round >= 2) best[which] = std::min(best[which], (t1 - t0) / n);  // rounds 0-1 warm up
  }
  bench::report("duet", "context_call_soon", "ns_per_callback_empty_context", best[0], "ns");
  bench::report("duet", "context_call_soon", "ns_per_callback_10_vars", best[1], "ns");
  bench::report("duet", "context_call_soon", "overhead_percent", (best[1] / best[0] - 1) * 100, "%");
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args = bench::parse_args(argc, argv);
  Vars vars;
  if (args.wants("context_get")) get(args, vars);
  if (args.wants("context_copy")) copy(args, vars);
  if (args.wants("context_set")) set(args, vars);
  if (args.wants("context_call_soon")) call_soon_batch(args, vars);
  return 0;
}
