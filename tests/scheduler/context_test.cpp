// Context variables (PEP 567) and where every callback and task runs.
// Ported from CPython's Lib/test/test_context.py (ContextTest) and the
// context tests of Lib/test/test_asyncio/test_tasks.py (test_context_1..6);
// the source test is named in each case. Propagation cases were checked
// against Python 3.11.7 (the script's output is quoted where it matters).
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>
#ifndef DUET_TEST_NO_THREADS
#include <thread>
#endif

#include <duet/duet.hpp>

#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::Context;
using duet::ContextVar;
using duet::Coro;
using duet::test::TestLoop;

namespace {

// Counts live values, to prove a context frees what it holds.
struct Counted {
  static inline int alive = 0;
  int value = 0;
  explicit Counted(int v) : value(v) { ++alive; }
  Counted(const Counted& other) : value(other.value) { ++alive; }
  ~Counted() { --alive; }
};

}  // namespace

// ---- ContextVar and Token ------------------------------------------------------

TEST_CASE("get: the value, else get's fallback, else the default, else LookupError (test_context_getset_1/3)",
          "[context]") {
  ContextVar<int> plain("plain");
  ContextVar<int> with_default("with_default", 7);
  CHECK(plain.name() == "plain");
  CHECK_THROWS_AS(plain.get(), duet::LookupError);
  CHECK_THROWS_WITH(plain.get(), Catch::Contains("plain"));
  CHECK(plain.get(5) == 5);
  CHECK_FALSE(plain.try_get().has_value());
  CHECK(with_default.get() == 7);
  CHECK(with_default.get(5) == 5);  // the argument wins over the default
  CHECK(with_default.try_get() == 7);

  Context().run([&] {
    auto token = plain.set(1);
    CHECK(plain.get() == 1);
    CHECK(plain.get(5) == 1);
    CHECK(&token.var() == &plain);
    CHECK_FALSE(token.has_old_value());  // Token.MISSING
    CHECK_FALSE(token.old_value().has_value());
    auto second = plain.set(2);
    CHECK(second.old_value() == 1);
    plain.reset(second);
    CHECK(plain.get() == 1);
    plain.reset(token);
    CHECK_THROWS_AS(plain.get(), duet::LookupError);
  });
}

TEST_CASE("a token is used once; another variable's token or another context's is refused (test_context_getset_1/2/4)",
          "[context]") {
  ContextVar<int> a("a");
  ContextVar<int> b("b");
  Context ctx;
  ctx.run([&] {
    auto token = a.set(1);
    a.reset(token);
    CHECK(token.used());
    CHECK_THROWS_AS(a.reset(token), duet::RuntimeError);  // "has already been used once"

    auto token_b = b.set(2);
    CHECK_THROWS_AS(a.reset(token_b), duet::ValueError);  // "created by a different ContextVar"
    CHECK_FALSE(token_b.used());
    CHECK(b.get() == 2);

    auto token_a = a.set(3);
    // Python 3.11: "ValueError: <Token ...> was created in a different Context"
    CHECK_THROWS_AS(duet::copy_context().run([&] { a.reset(token_a); }), duet::ValueError);
    CHECK_THROWS_AS(Context().run([&] { a.reset(token_a); }), duet::ValueError);
    a.reset(token_a);  // still good where it was made
    CHECK_FALSE(a.try_get().has_value());
  });
}

TEST_CASE("a moved token keeps its value and its single use", "[context]") {
  ContextVar<std::string> v("v");
  Context().run([&] {
    auto first = v.set("one");
    auto second = v.set("two");
    ContextVar<std::string>::Token moved = std::move(second);
    CHECK(moved.old_value() == "one");
    v.reset(moved);
    CHECK(v.get() == "one");
    CHECK_THROWS_AS(v.reset(moved), duet::RuntimeError);
  });
}

// ---- Context ---------------------------------------------------------------------

TEST_CASE("Context(): empty; run returns fn's result and passes arguments (test_context_new_1 / test_context_run_1)",
          "[context]") {
  Context ctx;
  CHECK(ctx.empty());
  CHECK(ctx.size() == 0);
  CHECK(ctx.run([](int x, int y) { return x * 10 + y; }, 4, 2) == 42);
}

TEST_CASE("run restores the previous context also when fn throws (test_context_run_3)", "[context]") {
  ContextVar<int> v("v", 0);
  Context ctx;
  CHECK_THROWS_AS(ctx.run([&] {
    v.set(1);
    throw std::runtime_error("boom");
  }),
                  std::runtime_error);
  CHECK(v.get() == 0);
  CHECK(ctx.get(v) == 1);  // the set stayed in ctx
}

TEST_CASE("what run sets stays in the context, not in the caller's (test_context_run_4 / test_context_run_6)",
          "[context]") {
  ContextVar<int> v("v", -1);
  Context ctx1;
  Context ctx2;
  ctx1.run([&] {
    v.set(1);
    ctx2.run([&] {
      CHECK(v.get() == -1);
      v.set(2);
      CHECK(v.get() == 2);
    });
    CHECK(v.get() == 1);
  });
  CHECK(v.get() == -1);
  CHECK(ctx1.get(v) == 1);
  CHECK(ctx2.get(v) == 2);
  CHECK(ctx1.size() == 1);
  CHECK(ctx1.contains(v));
  CHECK_FALSE(Context().contains(v));
}

TEST_CASE("a context already entered cannot be entered again (test_context_run_5)", "[context]") {
  Context ctx;
  bool inner_ran = false;
  ctx.run([&] {
    CHECK_THROWS_AS(ctx.run([&] { inner_ran = true; }), duet::RuntimeError);
    // a copy is another context object and can be entered
    ctx.copy().run([&] { inner_ran = true; });
  });
  CHECK(inner_ran);
  ctx.run([] {});  // and after the first run, ctx is free again
}

#ifndef DUET_TEST_NO_THREADS
TEST_CASE("a context entered on one thread cannot be entered on another", "[context][threads]") {
  Context ctx;
  bool refused = false;
  ctx.run([&] {
    std::thread other([&] {
      try {
        ctx.run([] {});
      } catch (const duet::RuntimeError&) {
        refused = true;
      }
    });
    other.join();
  });
  CHECK(refused);
}

TEST_CASE("each thread has its own current context (test_context_threads_1)", "[context][threads]") {
  ContextVar<int> v("v", 0);
  auto token = v.set(1);
  int seen_in_thread = -1;
  int after_set_in_thread = -1;
  std::thread other([&] {
    seen_in_thread = v.get();
    v.set(2);
    after_set_in_thread = v.get();
  });
  other.join();
  CHECK(seen_in_thread == 0);
  CHECK(after_set_in_thread == 2);
  CHECK(v.get() == 1);
  v.reset(token);
}
#endif

TEST_CASE("copies: copy() is a new context, assignment shares one (test_context_copy_1)", "[context]") {
  ContextVar<int> v("v", 0);
  Context ctx1;
  ctx1.run([&] { v.set(1); });
  Context ctx2 = ctx1.copy();
  Context same = ctx1;
  CHECK(same.is(ctx1));
  CHECK_FALSE(ctx2.is(ctx1));
  ctx2.run([&] { v.set(2); });
  CHECK(ctx1.get(v) == 1);
  CHECK(ctx2.get(v) == 2);
  same.run([&] { v.set(3); });
  CHECK(ctx1.get(v) == 3);
}

TEST_CASE("copy_context is a snapshot: later sets do not reach it", "[context]") {
  ContextVar<int> v("v", 0);
  Context().run([&] {
    v.set(1);
    Context snapshot = duet::copy_context();
    v.set(2);
    CHECK(snapshot.get(v) == 1);
    snapshot.run([&] { CHECK(v.get() == 1); });
    CHECK(v.get() == 2);
  });
}

TEST_CASE("the persistent map against a model: many variables, snapshots, sets and resets", "[context]") {
  // 2,000 variables: ids past 32 and 1,024 give the trie two and three
  // levels. Every snapshot must keep exactly the bindings it was taken
  // with while the live context changes under it.
  std::vector<std::unique_ptr<ContextVar<int>>> vars;
  for (int i = 0; i < 2000; ++i) vars.push_back(std::make_unique<ContextVar<int>>("v" + std::to_string(i)));
  std::mt19937 rng(12345);
  Context live;
  std::map<int, int> model;
  std::vector<std::pair<Context, std::map<int, int>>> snapshots;
  std::vector<std::pair<int, ContextVar<int>::Token>> tokens;
  live.run([&] {
    for (int step = 0; step < 20000; ++step) {
      const int op = static_cast<int>(rng() % 10);
      const int which = static_cast<int>(rng() % (step < 10000 ? 40 : vars.size()));
      if (op < 6) {
        tokens.emplace_back(which, vars[which]->set(step));
        model[which] = step;
      } else if (op < 8 && !tokens.empty()) {
        // Resets in LIFO order, as a `with`-style user would.
        auto& [index, token] = tokens.back();
        if (token.has_old_value())
          model[index] = *token.old_value();
        else
          model.erase(index);
        vars[index]->reset(token);
        tokens.pop_back();
      } else if (op == 8 && snapshots.size() < 50) {
        snapshots.emplace_back(duet::copy_context(), model);
      } else if (op == 9) {
        const int probe = static_cast<int>(rng() % vars.size());
        auto it = model.find(probe);
        REQUIRE(vars[probe]->try_get() == (it == model.end() ? std::nullopt : std::optional<int>(it->second)));
      }
    }
  });
  CHECK(live.size() == model.size());
  for (auto& [snapshot, expected] : snapshots) {
    REQUIRE(snapshot.size() == expected.size());
    for (auto& [index, value] : expected) REQUIRE(snapshot.get(*vars[index]) == value);
  }
  for (std::size_t i = 0; i < vars.size(); ++i) {
    auto it = model.find(static_cast<int>(i));
    REQUIRE(live.get(*vars[i]) == (it == model.end() ? std::nullopt : std::optional<int>(it->second)));
  }
}

TEST_CASE("values are destroyed once no context, snapshot or token holds them", "[context]") {
  ContextVar<Counted> v("v");
  {
    Context ctx;
    Context snapshot;
    ctx.run([&] {
      auto token = v.set(Counted(1));
      auto token2 = v.set(Counted(2));
      snapshot = duet::copy_context();
      v.set(Counted(3));
      CHECK(Counted::alive == 3);  // 1 in token2, 2 in the snapshot, 3 live
    });
    CHECK(Counted::alive == 2);  // the token is gone
  }
  CHECK(Counted::alive == 0);
}

// ---- propagation: callbacks ---------------------------------------------------------

TEST_CASE("call_soon runs the callback in a copy of the scheduling context; its sets do not leak", "[context][loop]") {
  // Python 3.11: "cb saw main main still main"
  TestLoop loop;
  ContextVar<std::string> v("v", "none");
  std::vector<std::string> seen;
  Context().run([&] {
    v.set("main");
    loop->call_soon([&] {
      seen.push_back(v.get());
      v.set("inner");
      seen.push_back(v.get());
    });
    loop->call_soon([&] { seen.push_back(v.get()); });  // a sibling: untouched by the first
    v.set("later");                                    // after scheduling: not seen
    loop->call_soon([&] { seen.push_back(v.get()); });
  });
  loop->call_soon([&] { seen.push_back(v.get()); });  // the thread's own context
  loop.run_until_idle();
  CHECK(seen == std::vector<std::string>{"main", "inner", "main", "later", "none"});
  CHECK(v.get() == "none");
}

TEST_CASE("a token made in one callback is refused in another (each Handle has its own context copy)",
          "[context][loop]") {
  TestLoop loop;
  ContextVar<int> v("v", 0);
  std::optional<ContextVar<int>::Token> token;
  bool refused = false;
  loop->call_soon([&] { token.emplace(v.set(1)); });
  loop->call_soon([&] {
    try {
      v.reset(*token);
    } catch (const duet::ValueError&) {
      refused = true;
    }
  });
  loop.run_until_idle();
  CHECK(refused);
}

TEST_CASE("timers run in the context current at call_later / call_at", "[context][loop]") {
  TestLoop loop;
  ContextVar<int> v("v", 0);
  std::vector<int> seen;
  Context().run([&] {
    v.set(1);
    loop->call_later(20ms, [&] { seen.push_back(v.get()); });
    v.set(2);
    loop->call_at(loop->time() + 10ms, [&] { seen.push_back(v.get()); });
  });
  loop->call_later(30ms, [&] { seen.push_back(v.get()); });
  loop.run_until_idle();
  CHECK(seen == std::vector<int>{2, 1, 0});
}

TEST_CASE("a callback given a Context runs in that context itself: its sets stay there", "[context][loop]") {
  // Python 3.11: "call_soon context= writes back: cb"
  TestLoop loop;
  ContextVar<std::string> v("v", "none");
  Context ctx;
  std::vector<std::string> seen;
  loop->call_soon(ctx, [&] {
    seen.push_back(v.get());
    v.set("cb");
  });
  loop->call_later(5ms, ctx, [&] { seen.push_back(v.get()); });
  loop.run_until_idle();
  CHECK(seen == std::vector<std::string>{"none", "cb"});
  CHECK(ctx.get(v) == "cb");
  CHECK(v.get() == "none");
}

#ifndef DUET_TEST_NO_THREADS
TEST_CASE("call_soon_threadsafe captures the posting thread's context", "[context][loop][threads]") {
  // Python 3.11: "threadsafe sees: thread"
  TestLoop loop;
  ContextVar<std::string> v("v", "none");
  std::string seen;
  std::thread poster([&] {
    v.set("thread");
    loop->call_soon_threadsafe([&] { seen = v.get(); });
  });
  poster.join();
  loop->run_once();  // the post is in the inbox
  CHECK(seen == "thread");
}
#endif

TEST_CASE("a future's done callback runs in the context of add_done_callback, or the one given", "[context][future]") {
  TestLoop loop;
  ContextVar<int> v("v", 0);
  auto fut = loop->create_future<int>();
  std::vector<int> seen;
  Context explicit_ctx;
  explicit_ctx.run([&] { v.set(9); });
  Context().run([&] {
    v.set(1);
    fut.add_done_callback([&](const duet::Future<int>&) { seen.push_back(v.get()); });
    v.set(2);
    fut.add_done_callback([&](const duet::Future<int>&) {
      seen.push_back(v.get());
      v.set(3);  // stays in the explicit context
    },
                          explicit_ctx);
  });
  fut.set_result(5);
  loop.run_until_idle();
  CHECK(seen == std::vector<int>{1, 9});
  CHECK(explicit_ctx.get(v) == 3);
}

// ---- propagation: tasks ----------------------------------------------------------------

TEST_CASE("a child task sees its parent's values at spawn; sets stay on their side (test_context_1)",
          "[context][task]") {
  TestLoop loop;
  ContextVar<std::string> cvar("cvar", "nope");
  std::vector<std::string> seen;
  auto sub = [&]() -> Coro<void> {
    co_await duet::sleep(10ms);
    seen.push_back(cvar.get());
    cvar.set("something else");
  };
  auto main = [&]() -> Coro<void> {
    seen.push_back(cvar.get());
    auto subtask = duet::create_task(sub());
    cvar.set("yes");
    seen.push_back(cvar.get());
    co_await subtask;
    seen.push_back(cvar.get());
  };
  loop->run_until_complete(main());
  CHECK(seen == std::vector<std::string>{"nope", "yes", "nope", "yes"});
}

TEST_CASE("inheritance at spawn: the child starts with the parent's values of that moment", "[context][task]") {
  TestLoop loop;
  ContextVar<int> v("v", 0);
  int child_saw = -1;
  auto child = [&]() -> Coro<void> {
    child_saw = v.get();
    co_return;
  };
  auto main = [&]() -> Coro<void> {
    v.set(5);
    auto t = duet::create_task(child());
    v.set(6);
    co_await t;
  };
  loop->run_until_complete(main());
  CHECK(child_saw == 5);
}

TEST_CASE("a done callback's set does not pollute the task; the task keeps its values across awaits (test_context_2)",
          "[context][task]") {
  TestLoop loop;
  ContextVar<std::string> cvar("cvar", "nope");
  std::vector<std::string> seen;
  auto main = [&]() -> Coro<void> {
    duet::Loop& l = duet::get_running_loop();
    seen.push_back(cvar.get());
    for (int j = 0; j < 2; ++j) {
      auto fut = l.create_future<void>();
      fut.add_done_callback([&](const duet::Future<void>&) { cvar.set("something else"); });
      cvar.set("yes" + std::to_string(j));
      l.call_soon([fut]() mutable { fut.set_result(); });
      co_await fut;
      seen.push_back(cvar.get());
      for (int i = 0; i < 3; ++i) {
        cvar.set("yes" + std::to_string(i) + "-" + std::to_string(j));
        co_await duet::sleep(1ms);
        seen.push_back(cvar.get());
      }
    }
  };
  loop->run_until_complete(main());
  CHECK(seen == std::vector<std::string>{"nope", "yes0", "yes0-0", "yes1-0", "yes2-0", "yes1", "yes0-1", "yes1-1",
                                         "yes2-1"});
}

TEST_CASE("100 tasks interleaved, each with its own value (test_context_3)", "[context][task]") {
  TestLoop loop;
  ContextVar<int> cvar("cvar", -1);
  std::mt19937 rng(3);
  int mismatches = 0;
  int checks = 0;
  auto sub = [&](int num) -> Coro<void> {
    for (int i = 0; i < 10; ++i) {
      cvar.set(num + i);
      co_await duet::sleep(std::chrono::microseconds(1000 + rng() % 49000));
      ++checks;
      if (cvar.get() != num + i) ++mismatches;
    }
  };
  auto main = [&]() -> Coro<void> {
    std::vector<duet::Task<void>> tasks;
    for (int i = 0; i < 100; ++i) tasks.push_back(duet::create_task(sub(static_cast<int>(rng() % 11))));
    co_await duet::gather(std::move(tasks));
  };
  loop->run_until_complete(main());
  CHECK(checks == 1000);
  CHECK(mismatches == 0);
}

TEST_CASE("tasks given one Context share it: its values change as they set (test_context_4/5/6)", "[context][task]") {
  // Python 3.11: "test_context_4-like [None, 1, 2]"
  TestLoop loop;
  ContextVar<int> cvar("cvar");
  auto coro = [&](int val) -> Coro<void> {
    co_await duet::yield_now();
    cvar.set(val);
  };
  auto main = [&]() -> Coro<std::vector<std::optional<int>>> {
    std::vector<std::optional<int>> ret;
    Context ctx = duet::copy_context();
    ret.push_back(ctx.get(cvar));
    auto t1 = duet::create_task(coro(1), "", ctx);
    co_await t1;
    ret.push_back(ctx.get(cvar));
    auto t2 = duet::get_running_loop().create_task(coro(2), "", ctx);  // loop.create_task (test_context_6)
    co_await t2;
    ret.push_back(ctx.get(cvar));
    co_return ret;
  };
  auto ret = loop->run_until_complete(main());
  CHECK(ret == std::vector<std::optional<int>>{std::nullopt, 1, 2});
}

TEST_CASE("gather and TaskGroup children inherit the parent's context and cannot change it", "[context][task]") {
  TestLoop loop;
  ContextVar<int> v("v", 0);
  auto child = [&](int add) -> Coro<int> {
    co_await duet::yield_now();
    int seen = v.get();
    v.set(seen + add);
    co_return seen;
  };
  auto main = [&]() -> Coro<std::vector<int>> {
    v.set(10);
    std::vector<int> seen;
    auto [a, b] = co_await duet::gather(child(1), child(2));
    seen.push_back(a);
    seen.push_back(b);
    co_await duet::task_group([&](duet::TaskGroup& tg) -> Coro<void> {
      auto t = tg.create_task(child(3));
      Context shared;
      tg.create_task(child(4), "shared", shared);
      co_await t;
      seen.push_back(t.result());
    });
    seen.push_back(v.get());
    co_return seen;
  };
  auto seen = loop->run_until_complete(main());
  CHECK(seen == std::vector<int>{10, 10, 10, 10});
}

TEST_CASE("run_until_complete runs the task in a copy of the caller's context", "[context][task]") {
  TestLoop loop;
  ContextVar<int> v("v", 0);
  auto token = v.set(1);
  auto body = [&]() -> Coro<int> {
    int seen = v.get();
    v.set(2);
    co_return seen;
  };
  CHECK(loop->run_until_complete(body()) == 1);
  CHECK(v.get() == 1);
  v.reset(token);
}

TEST_CASE("1,000 interleaved connections: every log line carries its own request id", "[context][task]") {
  // A server-like scenario: each "connection" task sets a request id once,
  // then handles a few requests, each a chain of awaits and callbacks
  // (timers, call_soon, child tasks, done callbacks) that all log through
  // one function reading the ContextVar. No line may carry another
  // connection's id.
  TestLoop loop;
  ContextVar<int> request_id("request_id", -1);
  struct Line {
    int expected;
    int logged;
  };
  std::vector<Line> lines;
  auto log = [&](int expected) { lines.push_back({expected, request_id.get()}); };
  std::mt19937 rng(1000);
  auto handler = [&](int id) -> Coro<void> {
    log(id);
    co_await duet::sleep(std::chrono::microseconds(rng() % 5000));
    log(id);
  };
  auto connection = [&](int id) -> Coro<void> {
    co_await duet::sleep(std::chrono::microseconds(rng() % 1000));
    request_id.set(id);
    duet::Loop& l = duet::get_running_loop();
    for (int request = 0; request < 3; ++request) {
      log(id);
      l.call_soon([&, id] { log(id); });
      l.call_later(std::chrono::microseconds(rng() % 3000), [&, id] { log(id); });
      auto child = duet::create_task(handler(id));
      child.add_done_callback([&, id](const duet::Task<void>&) { log(id); });
      co_await child;
      co_await duet::yield_now();
      log(id);
    }
  };
  auto main = [&]() -> Coro<void> {
    std::vector<duet::Task<void>> conns;
    for (int id = 0; id < 1000; ++id) conns.push_back(duet::create_task(connection(id)));
    co_await duet::gather(std::move(conns));
  };
  loop->run_until_complete(main());
  loop.run_until_idle();  // the last timers
  CHECK(lines.size() == 1000u * 3u * 7u);
  std::size_t crossed = 0;
  for (const Line& line : lines)
    if (line.logged != line.expected) ++crossed;
  CHECK(crossed == 0);
  CHECK(request_id.get() == -1);
}

// ---- regressions found in review ----------------------------------------------------

TEST_CASE("erasing a high variable does not free nodes a snapshot still uses", "[context]") {
  // Ids >= 1024 give the map three levels; resetting the only high key
  // collapses the root onto a child the snapshot shares.
  std::vector<std::unique_ptr<ContextVar<int>>> vars;
  for (int i = 0; i < 1100; ++i) vars.push_back(std::make_unique<ContextVar<int>>("v" + std::to_string(i)));
  Context ctx;
  Context snapshot;
  ctx.run([&] {
    vars[5]->set(5);
    auto high = vars[1050]->set(1050);
    snapshot = duet::copy_context();
    vars[1050]->reset(high);
    CHECK(vars[5]->get() == 5);
    CHECK_FALSE(vars[1050]->try_get().has_value());
  });
  CHECK(snapshot.get(*vars[5]) == 5);
  CHECK(snapshot.get(*vars[1050]) == 1050);
  CHECK(snapshot.size() == 2);
  CHECK(ctx.size() == 1);
}

namespace {

// A value whose destructor reads a ContextVar (a span that logs its
// request id when it ends).
struct Span {
  ContextVar<int>* id;
  std::vector<int>* log;
  ~Span() { log->push_back(id->get(-1)); }
};

}  // namespace

TEST_CASE("a value's destructor may read context variables when the last context holding it goes", "[context]") {
  TestLoop loop;
  ContextVar<int> request_id("request_id", 0);
  ContextVar<std::shared_ptr<Span>> span("span");
  std::vector<int> log;
  auto child = [&]() -> Coro<void> {
    request_id.set(7);
    span.set(std::shared_ptr<Span>(new Span{&request_id, &log}));
    duet::get_running_loop().call_later(1s, [] {});  // the timer's context holds the span too
    co_return;
  };
  auto main = [&]() -> Coro<void> {
    duet::create_task(child());  // fire and forget
    co_await duet::sleep(2s);
  };
  loop->run_until_complete(main());
  loop.run_until_idle();
  // The span died with the timer's context, after it ran; reading a
  // variable then must be safe (here it sees whatever context is current).
  CHECK(log.size() == 1);
}
