// An exception escaping a callback goes to the loop's exception handler and
// the loop keeps running. Ported from CPython's test_base_events.py:
// test_default_exc_handler_callback, test_set_exc_handler_custom,
// test_set_exc_handler_broken, test_default_exc_handler_broken.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::test::TestLoop;

namespace {
struct ZeroError {
  void operator()() const { throw std::domain_error("division by zero"); }
};
}  // namespace

TEST_CASE("the default handler logs the failing handle and exception; the loop goes on "
          "(test_default_exc_handler_callback)",
          "[exceptions]") {
  TestLoop loop;
  bool after = false;
  loop->call_soon(ZeroError{});
  loop->call_later(10ms, ZeroError{});
  loop->call_soon([&] { after = true; });
  loop.run_until_idle();
  CHECK(after);
  REQUIRE(loop.logged.size() == 2);
  for (const auto& line : loop.logged) {
    CHECK(line.rfind("Exception in callback <", 0) == 0);
    CHECK(line.find("ZeroError") != std::string::npos);
    CHECK(line.find("std::domain_error: division by zero") != std::string::npos);
  }
  CHECK(loop.logged[1].find("<TimerHandle") != std::string::npos);
}

TEST_CASE("a custom handler receives the message, the exception and the handle (test_set_exc_handler_custom)",
          "[exceptions]") {
  TestLoop loop({.debug = true});
  CHECK_FALSE(loop->get_exception_handler());
  std::vector<duet::ExceptionContext> seen;
  duet::Loop* seen_loop = nullptr;
  loop->set_exception_handler([&](duet::Loop& l, const duet::ExceptionContext& ctx) {
    seen_loop = &l;
    seen.push_back(ctx);
  });
  CHECK(loop->get_exception_handler());
  auto handle = loop->call_soon(ZeroError{});
  loop->run_once();
  REQUIRE(seen.size() == 1);
  CHECK(seen_loop == loop.loop.get());
  CHECK(seen[0].message.find("Exception in callback") == 0);
  CHECK(seen[0].message.find("ZeroError") != std::string::npos);
  CHECK(seen[0].handle.find("ZeroError") != std::string::npos);
  CHECK_THROWS_AS(std::rethrow_exception(seen[0].exception), std::domain_error);
  CHECK(loop.logged.empty());

  // Back to the default handler.
  loop->set_exception_handler(nullptr);
  loop->call_soon(ZeroError{});
  loop->run_once();
  CHECK(seen.size() == 1);
  REQUIRE(loop.logged.size() == 1);
  CHECK(loop.logged[0].find("Exception in callback") == 0);
}

TEST_CASE("a handler that throws falls back to the default one (test_set_exc_handler_broken)", "[exceptions]") {
  TestLoop loop;
  loop->set_exception_handler(
      [](duet::Loop&, const duet::ExceptionContext&) { throw std::invalid_argument("spam"); });
  loop->call_soon(ZeroError{});
  bool after = false;
  loop->call_soon([&] { after = true; });
  loop->run_once();
  CHECK(after);
  REQUIRE(loop.logged.size() == 1);
  const std::string& line = loop.logged[0];
  CHECK(line.rfind("Unhandled error in exception handler", 0) == 0);
  CHECK(line.find("std::invalid_argument: spam") != std::string::npos);
  CHECK(line.find("division by zero") != std::string::npos);  // the original error is kept
}

TEST_CASE("a broken log sink cannot take the loop down (test_default_exc_handler_broken)", "[exceptions]") {
  TestLoop loop;
  loop->set_log_sink([](std::string_view) { throw std::runtime_error("log is broken"); });
  loop->call_soon(ZeroError{});
  bool after = false;
  loop->call_soon([&] { after = true; });
  loop->run_once();
  CHECK(after);
}

TEST_CASE("exceptions not derived from std::exception are reported too", "[exceptions]") {
  TestLoop loop;
  loop->call_soon([] { throw 42; });
  loop->run_once();
  REQUIRE(loop.logged.size() == 1);
  CHECK(loop.logged[0].find("not derived from std::exception") != std::string::npos);
}

TEST_CASE("call_exception_handler can be used directly and never throws", "[exceptions]") {
  TestLoop loop;
  duet::ExceptionContext ctx;
  ctx.message = "custom report";
  loop->call_exception_handler(ctx);
  REQUIRE(loop.logged.size() == 1);
  CHECK(loop.logged[0] == "custom report");
}
