// Future<T>: states, results, exceptions, done callbacks.
// Ported from CPython's Lib/test/test_asyncio/test_futures.py (BaseFutureTests;
// the source test is named in each case).
#include <catch2/catch.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <duet/future.hpp>

#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::test::TestLoop;

TEST_CASE("a new future is pending; result() and exception() raise InvalidStateError (test_initial_state)",
          "[future]") {
  TestLoop loop;
  duet::Future<int> f(*loop);
  CHECK_FALSE(f.done());
  CHECK_FALSE(f.cancelled());
  CHECK_THROWS_AS(f.result(), duet::InvalidStateError);
  CHECK_THROWS_AS(f.exception(), duet::InvalidStateError);
  CHECK(&f.get_loop() == loop.loop.get());
}

TEST_CASE("set_result stores the result once (test_result)", "[future]") {
  TestLoop loop;
  auto f = loop->create_future<int>();
  f.set_result(42);
  CHECK(f.done());
  CHECK(f.result() == 42);
  CHECK(f.exception() == nullptr);
  CHECK_THROWS_AS(f.set_result(43), duet::InvalidStateError);
  CHECK_THROWS_AS(f.set_exception(std::runtime_error("x")), duet::InvalidStateError);
  CHECK_FALSE(f.cancel());
  CHECK(f.result() == 42);
}

TEST_CASE("set_exception makes result() throw it, of any type (test_exception)", "[future]") {
  TestLoop loop;
  duet::Future<int> f(*loop);
  f.set_exception(std::out_of_range("boom"));
  CHECK(f.done());
  CHECK_THROWS_AS(f.result(), std::out_of_range);
  CHECK(f.exception() != nullptr);
  duet::Future<void> g(*loop);
  g.set_exception(std::make_exception_ptr(17));
  CHECK_THROWS_AS(g.result(), int);
}

TEST_CASE("cancel(msg): cancelled, and result() raises CancelledError carrying the message "
          "(test_cancel, test_future_cancel_message_getter)",
          "[future][cancel]") {
  TestLoop loop;
  duet::Future<int> f(*loop);
  CHECK(f.cancel("my message"));
  CHECK(f.cancelled());
  CHECK(f.done());
  try {
    f.result();
    FAIL("result() did not throw");
  } catch (const duet::CancelledError& e) {
    CHECK(e.message() == "my message");
  }
  CHECK_THROWS_AS(f.exception(), duet::CancelledError);
  CHECK_THROWS_AS(f.set_result(1), duet::InvalidStateError);
  CHECK_FALSE(f.cancel());
}

TEST_CASE("done callbacks are scheduled, never called inline, in the order added (test_callbacks_invoked_on_set_result)",
          "[future][callbacks]") {
  TestLoop loop;
  duet::Future<int> f(*loop);
  std::vector<std::string> calls;
  f.add_done_callback([&](const duet::Future<int>& done) { calls.push_back("a" + std::to_string(done.result())); });
  f.add_done_callback([&](const duet::Future<int>& done) { calls.push_back("b" + std::to_string(done.result())); });
  f.set_result(10);
  CHECK(calls.empty());  // not inline
  loop->run_once();
  CHECK(calls == std::vector<std::string>{"a10", "b10"});
}

TEST_CASE("a callback added to a done future is scheduled at once (test_future_source_traceback / call_soon path)",
          "[future][callbacks]") {
  TestLoop loop;
  duet::Future<void> f(*loop);
  f.set_result();
  bool called = false;
  f.add_done_callback([&](const duet::Future<void>&) { called = true; });
  CHECK_FALSE(called);
  loop->run_once();
  CHECK(called);
}

TEST_CASE("remove_done_callback removes a pending callback (test_remove_done_callback)", "[future][callbacks]") {
  TestLoop loop;
  duet::Future<int> f(*loop);
  std::vector<int> calls;
  auto id1 = f.add_done_callback([&](const duet::Future<int>&) { calls.push_back(1); });
  f.add_done_callback([&](const duet::Future<int>&) { calls.push_back(2); });
  auto id3 = f.add_done_callback([&](const duet::Future<int>&) { calls.push_back(3); });
  CHECK(f.remove_done_callback(id1) == 1);
  CHECK(f.remove_done_callback(id1) == 0);
  CHECK(f.remove_done_callback(id3) == 1);
  f.set_result(0);
  loop->run_once();
  CHECK(calls == std::vector<int>{2});
}

TEST_CASE("a stale callback id removes nothing, even when its node was reused", "[future][callbacks]") {
  TestLoop loop;
  duet::Future<int> f(*loop);
  std::vector<int> calls;
  auto id = f.add_done_callback([&](const duet::Future<int>&) { calls.push_back(1); });
  CHECK(f.remove_done_callback(id) == 1);
  f.add_done_callback([&](const duet::Future<int>&) { calls.push_back(2); });  // may reuse the node
  CHECK(f.remove_done_callback(id) == 0);
  f.set_result(0);
  loop->run_once();
  CHECK(calls == std::vector<int>{2});
}

TEST_CASE("cancel schedules the callbacks too (test_callbacks_invoked_on_cancel)", "[future][callbacks]") {
  TestLoop loop;
  duet::Future<int> f(*loop);
  bool saw_cancelled = false;
  f.add_done_callback([&](const duet::Future<int>& done) { saw_cancelled = done.cancelled(); });
  f.cancel();
  loop->run_once();
  CHECK(saw_cancelled);
}

TEST_CASE("an exception nobody retrieved is reported when the future is destroyed (test_tb_logger_exception_unretrieved)",
          "[future][report]") {
  TestLoop loop;
  {
    duet::Future<int> f(*loop);
    f.set_exception(std::runtime_error("lost"));
  }
  REQUIRE(loop.logged.size() == 1);
  CHECK(loop.logged[0].find("Future exception was never retrieved") == 0);
  CHECK(loop.logged[0].find("lost") != std::string::npos);
  {
    duet::Future<int> f(*loop);
    f.set_exception(std::runtime_error("seen"));
    CHECK(f.exception() != nullptr);  // retrieved: no report
  }
  CHECK(loop.logged.size() == 1);
}

TEST_CASE("a future may outlive its loop; a lost exception is then reported on stderr", "[future][lifetime]") {
  std::unique_ptr<duet::Future<int>> kept;
  {
    TestLoop loop;
    kept = std::make_unique<duet::Future<int>>(*loop);
    kept->set_result(5);
  }
  CHECK(kept->result() == 5);
  CHECK_THROWS_AS(kept->get_loop(), duet::RuntimeError);
}

TEST_CASE("move-only results are handed over by run_until_complete", "[future]") {
  TestLoop loop;
  duet::Future<std::unique_ptr<int>> f(*loop);
  loop->call_soon([f]() mutable { f.set_result(std::make_unique<int>(9)); });
  auto p = loop->run_until_complete(f);
  REQUIRE(p);
  CHECK(*p == 9);
}

TEST_CASE("run_until_complete returns the result or throws the exception (test_run_until_complete*)",
          "[future][run]") {
  TestLoop loop;
  duet::Future<int> ok(*loop);
  loop->call_later(10ms, [ok]() mutable { ok.set_result(3); });
  CHECK(loop->run_until_complete(ok) == 3);
  duet::Future<int> bad(*loop);
  loop->call_soon([bad]() mutable { bad.set_exception(std::logic_error("nope")); });
  CHECK_THROWS_AS(loop->run_until_complete(bad), std::logic_error);
}

TEST_CASE("run_until_complete raises when the loop is stopped first (test_run_until_complete_stopped)",
          "[future][run]") {
  TestLoop loop;
  duet::Future<int> never(*loop);
  loop->call_soon([&] { loop->stop(); });
  CHECK_THROWS_WITH(loop->run_until_complete(never), "Event loop stopped before Future completed.");
}

TEST_CASE("Future() without a running loop raises", "[future]") {
  CHECK_THROWS_AS(duet::Future<int>(), duet::RuntimeError);
}
