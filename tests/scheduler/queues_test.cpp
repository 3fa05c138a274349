// Queue, LifoQueue, PriorityQueue. Ported from CPython's
// Lib/test/test_asyncio/test_queues.py (QueueBasicTests, QueueGetTests,
// QueuePutTests, _QueueJoinTests, _QueueShutdownTestMixin of 3.13; the
// source test is named in each case), plus duet's fairness rule and a
// randomized producer/consumer test with cancellations, on the manual
// clock.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <duet/duet.hpp>

#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::Coro;
using duet::Task;
using duet::test::TestLoop;

namespace {

// Coroutines for tasks are free functions (or named lambdas): a temporary
// lambda's captures would die before its coroutine runs.
Coro<int> get_from(duet::Queue<int>& q) {
  int v = co_await q.get();
  co_return v;
}

Coro<void> put_into(duet::Queue<int>& q, int v) { co_await q.put(v); }

}  // namespace

TEST_CASE("empty, full, qsize, maxsize (test_empty / test_full / test_maxsize)", "[queues]") {
  duet::Queue<int> q(2);
  CHECK(q.empty());
  CHECK(q.maxsize() == 2);
  q.put_nowait(1);
  CHECK_FALSE(q.empty());
  CHECK_FALSE(q.full());
  q.put_nowait(2);
  CHECK(q.full());
  CHECK(q.qsize() == 2);
  CHECK_THROWS_AS(q.put_nowait(3), duet::QueueFull);
  duet::Queue<int> unbounded;
  for (int i = 0; i < 1000; ++i) unbounded.put_nowait(i);
  CHECK_FALSE(unbounded.full());
}

TEST_CASE("FIFO, LIFO and priority order (test_order)", "[queues]") {
  duet::Queue<int> fifo;
  duet::LifoQueue<int> lifo;
  duet::PriorityQueue<int> prio;
  for (int v : {1, 3, 2}) {
    fifo.put_nowait(v);
    lifo.put_nowait(v);
    prio.put_nowait(v);
  }
  std::vector<int> f, l, p;
  for (int i = 0; i < 3; ++i) {
    f.push_back(fifo.get_nowait());
    l.push_back(lifo.get_nowait());
    p.push_back(prio.get_nowait());
  }
  CHECK(f == std::vector<int>{1, 3, 2});
  CHECK(l == std::vector<int>{2, 3, 1});
  CHECK(p == std::vector<int>{1, 2, 3});
  duet::PriorityQueue<int, std::greater<int>> largest_first;
  for (int v : {1, 3, 2}) largest_first.put_nowait(v);
  CHECK(largest_first.get_nowait() == 3);
}

TEST_CASE("get_nowait on an empty queue raises QueueEmpty (test_nonblocking_get_exception)", "[queues]") {
  duet::Queue<int> q;
  CHECK_THROWS_AS(q.get_nowait(), duet::QueueEmpty);
}

TEST_CASE("move-only items go in and out without copies", "[queues]") {
  TestLoop loop;
  duet::Queue<std::unique_ptr<std::string>> q(1);
  auto body = [&]() -> Coro<std::string> {
    auto produce = [&]() -> Coro<void> {
      co_await q.put(std::make_unique<std::string>("a"));
      co_await q.put(std::make_unique<std::string>("b"));  // waits: maxsize 1
    };
    auto producer = duet::create_task(produce());
    std::unique_ptr<std::string> first = co_await q.get();
    std::unique_ptr<std::string> second = co_await q.get();
    co_await producer;
    co_return *first + *second;
  };
  CHECK(loop->run_until_complete(body()) == "ab");
}

TEST_CASE("get waits for a put; put waits for a get (test_blocking_get_wait / test_blocking_put_wait)", "[queues]") {
  TestLoop loop;
  duet::Queue<int> q(1);
  std::vector<std::string> log;
  auto consumer = [&]() -> Coro<void> {
    int v = co_await q.get();
    log.push_back("got " + std::to_string(v));
  };
  auto main = [&]() -> Coro<void> {
    auto c = duet::create_task(consumer());
    co_await duet::sleep(10ms);
    log.push_back("put");
    co_await q.put(1);
    co_await c;
    co_await q.put(2);  // fills the queue
    auto put_3 = [&]() -> Coro<void> {
      co_await q.put(3);
      log.push_back("put 3 done");
    };
    auto p = duet::create_task(put_3());
    co_await duet::sleep(10ms);
    CHECK_FALSE(p.done());
    int v = q.get_nowait();  // frees a slot: wakes the putter
    log.push_back("took " + std::to_string(v));
    co_await p;
    CHECK(q.get_nowait() == 3);
  };
  loop->run_until_complete(main());
  CHECK(log == std::vector<std::string>{"put", "got 1", "took 2", "put 3 done"});
}

TEST_CASE("a cancelled get leaves the queue consistent (test_cancelled_getters_not_being_held_in_self_getters)",
          "[queues]") {
  TestLoop loop;
  duet::Queue<int> q;
  auto main = [&]() -> Coro<void> {
    auto getter = duet::create_task(get_from(q));
    co_await duet::sleep(1ms);
    getter.cancel();
    bool raised = co_await duet::test::raises<duet::CancelledError>(getter);
    CHECK(raised);
    q.put_nowait(1);
    int v = co_await q.get();  // not stolen by the cancelled getter
    CHECK(v == 1);
  };
  loop->run_until_complete(main());
}

TEST_CASE("a getter woken then cancelled passes the item on; nothing is lost (test_get_cancelled_race)",
          "[queues]") {
  TestLoop loop;
  duet::Queue<int> q;
  auto main = [&]() -> Coro<int> {
    auto t1 = duet::create_task(get_from(q));
    auto t2 = duet::create_task(get_from(q));
    co_await duet::sleep(1ms);
    q.put_nowait(42);  // wakes t1 ...
    t1.cancel();       // ... which is cancelled before it runs
    bool raised = co_await duet::test::raises<duet::CancelledError>(t1);
    CHECK(raised);
    int v = co_await t2;
    co_return v;
  };
  CHECK(loop->run_until_complete(main()) == 42);
  CHECK(q.empty());
}

TEST_CASE("a cancelled put never stores its item; a putter woken then cancelled passes the slot on "
          "(test_put_cancelled / test_put_cancelled_race)",
          "[queues]") {
  TestLoop loop;
  duet::Queue<int> q(1);
  auto main = [&]() -> Coro<void> {
    q.put_nowait(0);
    auto p1 = duet::create_task(put_into(q, 1));
    auto p2 = duet::create_task(put_into(q, 2));
    co_await duet::sleep(1ms);
    CHECK(q.get_nowait() == 0);  // wakes p1 ...
    p1.cancel();                 // ... cancelled before it runs
    co_await duet::gather(duet::return_exceptions, p1, p2);
    CHECK(q.qsize() == 1);
    CHECK(q.get_nowait() == 2);
  };
  loop->run_until_complete(main());
}

TEST_CASE("a newcomer does not overtake a woken getter (fairness)", "[queues]") {
  TestLoop loop;
  duet::Queue<std::string> q;
  std::vector<std::string> got;
  auto getter = [&](std::string name) -> Coro<void> {
    std::string item = co_await q.get();
    got.push_back(name + ":" + item);
  };
  auto main = [&]() -> Coro<void> {
    auto waiting = duet::create_task(getter("waiting"));
    co_await duet::sleep(1ms);
    q.put_nowait("x");  // wakes "waiting"
    auto newcomer = duet::create_task(getter("newcomer"));
    co_await duet::yield_now();
    q.put_nowait("y");
    co_await duet::gather(waiting, newcomer);
  };
  loop->run_until_complete(main());
  CHECK(got == std::vector<std::string>{"waiting:x", "newcomer:y"});
}

TEST_CASE("an item reserved for a woken getter is not handed to get_nowait; a free slot reserved for a woken "
          "putter not to put_nowait",
          "[queues]") {
  TestLoop loop;
  duet::Queue<int> q(1);
  std::vector<std::string> got;
  auto getter = [&](std::string name) -> Coro<void> {
    int item = co_await q.get();
    got.push_back(name + ":" + std::to_string(item));
  };
  auto main = [&]() -> Coro<void> {
    auto first = duet::create_task(getter("first"));
    co_await duet::sleep(1ms);
    q.put_nowait(1);  // wakes first, and the item is set aside for it
    CHECK(q.qsize() == 1);
    CHECK_THROWS_AS(q.get_nowait(), duet::QueueEmpty);
    co_await first;

    q.put_nowait(2);  // full
    auto p = duet::create_task(put_into(q, 3));
    co_await duet::sleep(1ms);
    CHECK(q.get_nowait() == 2);  // wakes the putter, the slot is set aside
    CHECK_THROWS_AS(q.put_nowait(4), duet::QueueFull);
    co_await p;
    CHECK(q.get_nowait() == 3);
  };
  loop->run_until_complete(main());
  CHECK(got == std::vector<std::string>{"first:1"});
}

TEST_CASE("task_done and join; task_done too often raises ValueError (test_task_done / test_task_done_underflow / "
          "test_join_empty_queue)",
          "[queues]") {
  TestLoop loop;
  duet::Queue<int> q;
  CHECK_THROWS_AS(q.task_done(), duet::ValueError);
  int processed = 0;
  auto worker = [&]() -> Coro<void> {
    for (;;) {
      int v = co_await q.get();
      co_await duet::sleep(std::chrono::milliseconds(v));
      ++processed;
      q.task_done();
    }
  };
  auto main = [&]() -> Coro<void> {
    co_await q.join();  // empty: returns at once
    auto w1 = duet::create_task(worker());
    auto w2 = duet::create_task(worker());
    for (int i = 1; i <= 10; ++i) q.put_nowait(i);
    CHECK(q.unfinished_tasks() == 10);
    co_await q.join();
    CHECK(processed == 10);
    w1.cancel();
    w2.cancel();
    co_await duet::gather(duet::return_exceptions, w1, w2);
  };
  loop->run_until_complete(main());
  CHECK_THROWS_AS(q.task_done(), duet::ValueError);
}

TEST_CASE("shutdown: put raises, get drains then raises, waiters are woken to raise (test_shutdown_empty / "
          "test_shutdown_nonempty / test_shutdown_getters / test_shutdown_putters)",
          "[queues]") {
  TestLoop loop;
  duet::Queue<int> q(1);
  auto main = [&]() -> Coro<void> {
    auto getter = duet::create_task(get_from(q));
    co_await duet::sleep(1ms);
    q.put_nowait(1);
    CHECK(co_await getter == 1);

    q.put_nowait(2);
    auto putter = duet::create_task(put_into(q, 3));
    co_await duet::sleep(1ms);
    q.shutdown();
    CHECK(q.is_shut_down());
    bool put_refused = co_await duet::test::raises<duet::QueueShutDown>(putter);
    CHECK(put_refused);
    CHECK_THROWS_AS(q.put_nowait(4), duet::QueueShutDown);
    int drained = co_await q.get();  // what was in is still delivered
    CHECK(drained == 2);
    bool get_refused = co_await duet::test::raises<duet::QueueShutDown>(q.get());
    CHECK(get_refused);
    CHECK_THROWS_AS(q.get_nowait(), duet::QueueShutDown);

    duet::Queue<int> other;
    auto waiting_getter = duet::create_task(get_from(other));
    co_await duet::sleep(1ms);
    other.shutdown();
    bool getter_refused = co_await duet::test::raises<duet::QueueShutDown>(waiting_getter);
    CHECK(getter_refused);
  };
  loop->run_until_complete(main());
}

TEST_CASE("shutdown(immediate) drops the items and releases join (test_shutdown_immediate)", "[queues]") {
  TestLoop loop;
  duet::Queue<int> q;
  auto main = [&]() -> Coro<void> {
    for (int i = 0; i < 3; ++i) q.put_nowait(i);
    auto joiner = duet::create_task(q.join());
    co_await duet::sleep(1ms);
    CHECK_FALSE(joiner.done());
    q.shutdown(true);
    CHECK(q.empty());
    co_await joiner;
    CHECK(q.unfinished_tasks() == 0);
  };
  loop->run_until_complete(main());
}

TEST_CASE("50 producers and consumers, random cancellations, 100,000 items: each delivered once or still queued",
          "[queues][stress]") {
  TestLoop loop;
  duet::Queue<int> q(16);
  std::mt19937 rng(20261122);
  const int kItems = 100'000;
  const int kProducers = 50;
  const int kConsumers = 50;
  int next_item = 0;
  std::vector<int> sent_count(kItems, 0);
  std::vector<int> received_count(kItems, 0);
  int cancellations = 0;
  int victims_cancelled = 0;

  std::vector<int> retry;  // items whose put was cancelled: sent again
  auto next = [&]() -> std::optional<int> {
    if (!retry.empty()) {
      const int item = retry.back();
      retry.pop_back();
      return item;
    }
    if (next_item < kItems) return next_item++;
    return std::nullopt;
  };
  auto producer = [&]() -> Coro<void> {
    while (std::optional<int> item = next()) {
      try {
        co_await q.put(*item);
        ++sent_count[*item];  // put returned: the item is in the queue
      } catch (const duet::CancelledError&) {
        retry.push_back(*item);  // a cancelled put did not store it
        ++cancellations;
        throw;
      }
      if (rng() % 8 == 0) co_await duet::sleep(std::chrono::microseconds(rng() % 50));
    }
  };
  auto consumer = [&]() -> Coro<void> {
    for (;;) {
      int item = co_await q.get();
      ++received_count[item];
      if (rng() % 8 == 0) co_await duet::sleep(std::chrono::microseconds(rng() % 50));
    }
  };
  auto main = [&]() -> Coro<void> {
    std::vector<Task<void>> producers, consumers;
    for (int i = 0; i < kProducers; ++i) producers.push_back(duet::create_task(producer()));
    for (int i = 0; i < kConsumers; ++i) consumers.push_back(duet::create_task(consumer()));
    // Cancel random producers and consumers now and then, replacing them.
    for (int round = 0; (next_item < kItems || !retry.empty()) && round < 200'000; ++round) {
      co_await duet::sleep(std::chrono::microseconds(1 + rng() % 20));
      if (rng() % 4 == 0) {
        auto& victims = rng() % 2 ? producers : consumers;
        const std::size_t i = rng() % victims.size();
        victims[i].cancel();
        ++victims_cancelled;
        co_await duet::gather(duet::return_exceptions, victims[i]);
        victims[i] = duet::create_task(&victims == &producers ? producer() : consumer());
      }
    }
    co_await duet::gather(duet::return_exceptions, std::move(producers));
    // Let the consumers drain what is left, then stop them.
    for (int i = 0; i < 1000 && !q.empty(); ++i) co_await duet::sleep(1ms);
    for (auto& c : consumers) c.cancel();
    co_await duet::gather(duet::return_exceptions, std::move(consumers));
  };
  loop->run_until_complete(main());
  std::vector<int> remaining(kItems, 0);
  while (!q.empty()) ++remaining[q.get_nowait()];
  int wrong = 0;
  long delivered = 0;
  for (int i = 0; i < kItems; ++i) {
    delivered += received_count[i];
    if (sent_count[i] != 1 || received_count[i] + remaining[i] != 1) ++wrong;
  }
  INFO("cancellations of producers' puts: " << cancellations);
  CHECK(wrong == 0);
  CHECK(delivered == kItems);
  CHECK(victims_cancelled > 100);
  CHECK(cancellations > 0);  // some puts were cancelled while waiting
}

TEST_CASE("a getter arriving after shutdown, when the last item is promised to a woken getter, is refused at once",
          "[queues]") {
  TestLoop loop;
  duet::Queue<int> q;
  auto main = [&]() -> Coro<void> {
    auto g1 = duet::create_task(get_from(q));
    co_await duet::sleep(1ms);
    q.put_nowait(1);  // reserved for g1
    q.shutdown();
    bool refused = co_await duet::test::raises<duet::QueueShutDown>(q.get());
    CHECK(refused);
    CHECK(co_await g1 == 1);
  };
  loop->run_until_complete(main());
}

TEST_CASE("a refused or cancelled put leaves a move-only item with the caller", "[queues]") {
  TestLoop loop;
  duet::Queue<std::unique_ptr<int>> q(1);
  auto main = [&]() -> Coro<void> {
    q.put_nowait(std::make_unique<int>(1));
    auto item = std::make_unique<int>(2);
    CHECK_THROWS_AS(q.put_nowait(std::move(item)), duet::QueueFull);
    REQUIRE(item);  // still ours
    CHECK(*item == 2);
    auto putter = [&]() -> Coro<void> { co_await q.put(std::move(item)); };
    auto t = duet::create_task(putter());
    co_await duet::sleep(1ms);
    t.cancel();
    bool cancelled = co_await duet::test::raises<duet::CancelledError>(t);
    CHECK(cancelled);
    REQUIRE(item);  // the cancelled put did not take it
    auto first = q.get_nowait();
    co_await q.put(std::move(item));  // now there is room: moved in
    CHECK_FALSE(item);
    CHECK(*q.get_nowait() == 2);
  };
  loop->run_until_complete(main());
}
