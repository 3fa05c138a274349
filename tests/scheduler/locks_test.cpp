// Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier. Ported from
// CPython's Lib/test/test_asyncio/test_locks.py (LockTests, EventTests,
// ConditionTests, SemaphoreTests, BarrierTests; the source test is named
// in each case), on the manual clock.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include <duet/duet.hpp>

#include "support/test_loop.hpp"

using namespace std::chrono_literals;
using duet::Coro;
using duet::Task;
using duet::test::TestLoop;

// ---- Lock ------------------------------------------------------------------------

TEST_CASE("Lock: acquire, locked, release; release of a free lock raises (test_lock / test_release_not_acquired)",
          "[locks][lock]") {
  TestLoop loop;
  duet::Lock lock;
  CHECK_FALSE(lock.locked());
  auto body = [&]() -> Coro<void> {
    co_await lock.acquire();
    CHECK(lock.locked());
    lock.release();
    CHECK_FALSE(lock.locked());
  };
  loop->run_until_complete(body());
  CHECK_THROWS_AS(lock.release(), duet::RuntimeError);
}

TEST_CASE("Lock: waiters get the lock in arrival order (test_acquire)", "[locks][lock]") {
  TestLoop loop;
  duet::Lock lock;
  std::vector<int> order;
  auto worker = [&](int id) -> Coro<void> {
    co_await lock.acquire();
    order.push_back(id);
    co_await duet::yield_now();
    lock.release();
  };
  auto main = [&]() -> Coro<void> {
    co_await lock.acquire();
    auto t1 = duet::create_task(worker(1));
    auto t2 = duet::create_task(worker(2));
    auto t3 = duet::create_task(worker(3));
    co_await duet::yield_now();
    CHECK(lock.waiting() == 3);
    lock.release();
    co_await duet::gather(t1, t2, t3);
  };
  loop->run_until_complete(main());
  CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("Lock: a waiter cancelled while waiting does not get the lock (test_acquire_cancel)", "[locks][lock]") {
  TestLoop loop;
  duet::Lock lock;
  bool got_it = false;
  auto waiter = [&]() -> Coro<void> {
    co_await lock.acquire();
    got_it = true;
  };
  auto main = [&]() -> Coro<void> {
    co_await lock.acquire();
    auto t = duet::create_task(waiter());
    co_await duet::yield_now();
    t.cancel();
    bool cancelled = co_await duet::test::raises<duet::CancelledError>(t);
    CHECK(cancelled);
    CHECK(lock.waiting() == 0);
    lock.release();
  };
  loop->run_until_complete(main());
  CHECK_FALSE(got_it);
  CHECK_FALSE(lock.locked());
}

TEST_CASE("Lock: cancelling a waiter in the middle keeps the others' order (test_cancel_race)", "[locks][lock]") {
  TestLoop loop;
  duet::Lock lock;
  std::vector<int> order;
  auto worker = [&](int id) -> Coro<void> {
    co_await lock.acquire();
    order.push_back(id);
    lock.release();
  };
  auto main = [&]() -> Coro<void> {
    co_await lock.acquire();
    auto ta = duet::create_task(worker(1));
    auto tb = duet::create_task(worker(2));
    auto tc = duet::create_task(worker(3));
    co_await duet::yield_now();
    tb.cancel();
    lock.release();
    co_await duet::gather(duet::return_exceptions, ta, tb, tc);
  };
  loop->run_until_complete(main());
  CHECK(order == std::vector<int>{1, 3});
  CHECK_FALSE(lock.locked());
}

TEST_CASE("Lock: a waiter woken then cancelled passes the lock on (test_cancel_release_race)", "[locks][lock]") {
  TestLoop loop;
  duet::Lock lock;
  std::vector<int> order;
  auto worker = [&](int id) -> Coro<void> {
    co_await lock.acquire();
    order.push_back(id);
    lock.release();
  };
  auto main = [&]() -> Coro<void> {
    co_await lock.acquire();
    auto t1 = duet::create_task(worker(1));
    auto t2 = duet::create_task(worker(2));
    co_await duet::yield_now();
    lock.release();  // wakes t1 ...
    t1.cancel();     // ... which is cancelled before it runs
    co_await duet::gather(duet::return_exceptions, t1, t2);
  };
  loop->run_until_complete(main());
  CHECK(order == std::vector<int>{2});
  CHECK_FALSE(lock.locked());
}

TEST_CASE("Lock: a newcomer does not overtake a woken waiter (fairness)", "[locks][lock]") {
  TestLoop loop;
  duet::Lock lock;
  std::vector<std::string> order;
  auto worker = [&](std::string name) -> Coro<void> {
    co_await lock.acquire();
    order.push_back(name);
    lock.release();
  };
  auto main = [&]() -> Coro<void> {
    co_await lock.acquire();
    auto waiting = duet::create_task(worker("waiting"));
    co_await duet::yield_now();
    lock.release();  // "waiting" is woken but has not run
    CHECK_FALSE(lock.locked());
    auto newcomer = duet::create_task(worker("newcomer"));
    co_await duet::gather(waiting, newcomer);
  };
  loop->run_until_complete(main());
  CHECK(order == std::vector<std::string>{"waiting", "newcomer"});
}

TEST_CASE("Lock: scoped() releases on normal exit, exception and cancellation (test_context_manager)",
          "[locks][lock]") {
  TestLoop loop;
  duet::Lock lock;
  auto ok = [&]() -> Coro<void> {
    auto held = co_await lock.scoped();
    CHECK(lock.locked());
  };
  loop->run_until_complete(ok());
  CHECK_FALSE(lock.locked());

  auto fails = [&]() -> Coro<void> {
    auto held = co_await lock.scoped();
    throw std::runtime_error("inside");
  };
  CHECK_THROWS_AS(loop->run_until_complete(fails()), std::runtime_error);
  CHECK_FALSE(lock.locked());

  auto sleeps = [&]() -> Coro<void> {
    auto held = co_await lock.scoped();
    co_await duet::sleep(1h);
  };
  auto main = [&]() -> Coro<void> {
    auto t = duet::create_task(sleeps());
    co_await duet::sleep(1ms);
    CHECK(lock.locked());
    t.cancel();
    bool cancelled = co_await duet::test::raises<duet::CancelledError>(t);
    CHECK(cancelled);
  };
  loop->run_until_complete(main());
  CHECK_FALSE(lock.locked());

  auto early = [&]() -> Coro<void> {
    auto held = co_await lock.scoped();
    held.release();
    CHECK_FALSE(lock.locked());
    CHECK_FALSE(held.owns());
  };
  loop->run_until_complete(early());
}

TEST_CASE("a primitive is bound to the loop that first waits on it (test_lock_by_loop / mixins)", "[locks]") {
  duet::Lock lock;
  duet::Event event;
  TestLoop first;
  auto use = [&]() -> Coro<void> {
    co_await lock.acquire();
    lock.release();
    event.set();
    co_await event.wait();
  };
  first->run_until_complete(use());
  TestLoop second;
  auto use_lock = [&]() -> Coro<void> { co_await lock.acquire(); };
  CHECK_THROWS_WITH(second->run_until_complete(use_lock()), Catch::Contains("bound to a different event loop"));
  auto use_event = [&]() -> Coro<void> { co_await event.wait(); };
  CHECK_THROWS_AS(second->run_until_complete(use_event()), duet::RuntimeError);

  // Also when the first loop is gone and a new one took its address.
  duet::Semaphore sem(1);
  auto use_sem = [&]() -> Coro<void> {
    co_await sem.acquire();
    sem.release();
  };
  auto third = std::make_unique<TestLoop>();
  (*third)->run_until_complete(use_sem());
  third.reset();
  TestLoop fourth;
  CHECK_THROWS_AS(fourth->run_until_complete(use_sem()), duet::RuntimeError);
}

// ---- Event -----------------------------------------------------------------------

TEST_CASE("Event: set wakes every waiter; wait on a set event returns at once (test_wait / test_wait_on_set)",
          "[locks][event]") {
  TestLoop loop;
  duet::Event event;
  std::vector<int> woke;
  auto waiter = [&](int id) -> Coro<void> {
    co_await event.wait();
    woke.push_back(id);
  };
  auto main = [&]() -> Coro<void> {
    auto t1 = duet::create_task(waiter(1));
    auto t2 = duet::create_task(waiter(2));
    co_await duet::sleep(1ms);
    CHECK(woke.empty());
    auto t3 = duet::create_task(waiter(3));
    co_await duet::yield_now();  // t3 waits too
    event.set();
    CHECK(event.is_set());
    co_await duet::gather(t1, t2, t3);
    co_await event.wait();  // set: no wait
  };
  loop->run_until_complete(main());
  CHECK(woke == std::vector<int>{1, 2, 3});
}

TEST_CASE("Event: a cancelled waiter leaves; clear after set still wakes the waiters (test_wait_cancel / "
          "test_clear_with_waiters)",
          "[locks][event]") {
  TestLoop loop;
  duet::Event event;
  int woke = 0;
  auto waiter = [&]() -> Coro<void> {
    co_await event.wait();
    ++woke;
  };
  auto main = [&]() -> Coro<void> {
    auto cancelled = duet::create_task(waiter());
    auto t = duet::create_task(waiter());
    co_await duet::yield_now();
    cancelled.cancel();
    bool raised = co_await duet::test::raises<duet::CancelledError>(cancelled);
    CHECK(raised);
    event.set();
    event.clear();
    CHECK_FALSE(event.is_set());
    co_await t;
  };
  loop->run_until_complete(main());
  CHECK(woke == 1);
}

// ---- Condition ---------------------------------------------------------------------

TEST_CASE("Condition: notify wakes waiters one at a time, in order, each holding the lock (test_wait / test_notify)",
          "[locks][condition]") {
  TestLoop loop;
  duet::Condition cond;
  std::vector<int> order;
  auto waiter = [&](int id) -> Coro<void> {
    auto held = co_await cond.scoped();
    co_await cond.wait();
    CHECK(cond.locked());
    order.push_back(id);
  };
  auto main = [&]() -> Coro<void> {
    auto t1 = duet::create_task(waiter(1));
    auto t2 = duet::create_task(waiter(2));
    auto t3 = duet::create_task(waiter(3));
    co_await duet::sleep(1ms);
    CHECK(cond.waiting() == 3);
    {
      auto held = co_await cond.scoped();
      cond.notify(1);
    }
    co_await duet::sleep(1ms);
    CHECK(order == std::vector<int>{1});
    {
      auto held = co_await cond.scoped();
      cond.notify(2);
    }
    co_await duet::gather(t1, t2, t3);
  };
  loop->run_until_complete(main());
  CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("Condition: wait/notify without the lock raise RuntimeError (test_wait_unacquired / "
          "test_notify_unacquired)",
          "[locks][condition]") {
  TestLoop loop;
  duet::Condition cond;
  auto body = [&]() -> Coro<void> { co_await cond.wait(); };
  CHECK_THROWS_AS(loop->run_until_complete(body()), duet::RuntimeError);
  CHECK_THROWS_AS(cond.notify(), duet::RuntimeError);
  CHECK_THROWS_AS(cond.notify_all(), duet::RuntimeError);
}

TEST_CASE("Condition: wait_for returns once the predicate holds (test_wait_for)", "[locks][condition]") {
  TestLoop loop;
  duet::Condition cond;
  int presult = 0;
  int calls = 0;
  auto waiter = [&]() -> Coro<int> {
    auto held = co_await cond.scoped();
    int r = co_await cond.wait_for([&] {
      ++calls;
      return presult;
    });
    co_return r;
  };
  auto main = [&]() -> Coro<int> {
    auto t = duet::create_task(waiter());
    co_await duet::sleep(1ms);
    {
      auto held = co_await cond.scoped();
      cond.notify();  // predicate still false
    }
    co_await duet::sleep(1ms);
    CHECK_FALSE(t.done());
    presult = 7;
    {
      auto held = co_await cond.scoped();
      cond.notify();
    }
    int r = co_await t;
    co_return r;
  };
  CHECK(loop->run_until_complete(main()) == 7);
  CHECK(calls == 3);
}

TEST_CASE("Condition: a cancelled wait re-acquires the lock before raising (test_wait_cancel / "
          "test_wait_cancel_contested)",
          "[locks][condition]") {
  TestLoop loop;
  duet::Condition cond;
  bool locked_when_cancelled = false;
  auto waiter = [&]() -> Coro<void> {
    co_await cond.acquire();
    try {
      co_await cond.wait();
    } catch (const duet::CancelledError&) {
      locked_when_cancelled = cond.locked();
      cond.release();
      throw;
    }
  };
  auto main = [&]() -> Coro<void> {
    auto t = duet::create_task(waiter());
    co_await duet::sleep(1ms);
    co_await cond.acquire();  // contested: the waiter must wait for us
    t.cancel();
    co_await duet::sleep(1ms);
    CHECK_FALSE(t.done());  // cancelled, but still waiting for the lock
    cond.release();
    bool raised = co_await duet::test::raises<duet::CancelledError>(t);
    CHECK(raised);
  };
  loop->run_until_complete(main());
  CHECK(locked_when_cancelled);
  CHECK_FALSE(cond.locked());
}

TEST_CASE("Condition: a waiter notified then cancelled hands the notification on (test_cancelled_error_wakeup, "
          "gh-112202)",
          "[locks][condition]") {
  TestLoop loop;
  duet::Condition cond;
  std::vector<int> woke;
  auto waiter = [&](int id) -> Coro<void> {
    auto held = co_await cond.scoped();
    co_await cond.wait();
    woke.push_back(id);
  };
  auto main = [&]() -> Coro<void> {
    auto t1 = duet::create_task(waiter(1));
    auto t2 = duet::create_task(waiter(2));
    co_await duet::sleep(1ms);
    {
      auto held = co_await cond.scoped();
      cond.notify(1);  // t1 is notified ...
      t1.cancel();     // ... and cancelled before it runs
    }
    co_await duet::gather(duet::return_exceptions, t1, t2);
  };
  loop->run_until_complete(main());
  CHECK(woke == std::vector<int>{2});  // not lost: t2 got it
}

TEST_CASE("Condition: a timeout around wait leaves the lock held (test_timeout_in_block)", "[locks][condition]") {
  TestLoop loop;
  duet::Condition cond;
  auto body = [&]() -> Coro<bool> {
    auto held = co_await cond.scoped();
    bool timed_out = co_await duet::test::raises<duet::TimeoutError>(duet::wait_for(cond.wait(), 10ms));
    CHECK(cond.locked());
    co_return timed_out;
  };
  CHECK(loop->run_until_complete(body()));
  CHECK_FALSE(cond.locked());
}

TEST_CASE("Condition: an explicit lock is shared (test_explicit_lock)", "[locks][condition]") {
  TestLoop loop;
  duet::Lock lock;
  duet::Condition cond(lock);
  auto body = [&]() -> Coro<void> {
    co_await lock.acquire();
    CHECK(cond.locked());
    cond.release();
    CHECK_FALSE(lock.locked());
    co_return;
  };
  loop->run_until_complete(body());
}

// ---- Semaphore -------------------------------------------------------------------

TEST_CASE("Semaphore: value counts down and up; negative value and over-release are ValueError "
          "(test_semaphore / test_semaphore_value / test_release_not_acquired)",
          "[locks][semaphore]") {
  TestLoop loop;
  CHECK_THROWS_AS(duet::Semaphore(-1), duet::ValueError);
  duet::Semaphore sem(2);
  duet::BoundedSemaphore bounded(1);
  auto body = [&]() -> Coro<void> {
    co_await sem.acquire();
    CHECK(sem.value() == 1);
    CHECK_FALSE(sem.locked());
    co_await sem.acquire();
    CHECK(sem.locked());
    sem.release();
    sem.release();
    sem.release();  // a plain Semaphore may grow
    CHECK(sem.value() == 3);
    co_await bounded.acquire();
    bounded.release();
  };
  loop->run_until_complete(body());
  CHECK_THROWS_AS(bounded.release(), duet::ValueError);
}

TEST_CASE("Semaphore: waiters acquire in FIFO order (test_acquire / test_acquire_fifo_order)", "[locks][semaphore]") {
  TestLoop loop;
  duet::Semaphore sem(1);
  std::vector<int> order;
  auto worker = [&](int id) -> Coro<void> {
    auto held = co_await sem.scoped();
    order.push_back(id);
    co_await duet::yield_now();
  };
  auto main = [&]() -> Coro<void> {
    std::vector<Task<void>> tasks;
    for (int i = 1; i <= 5; ++i) tasks.push_back(duet::create_task(worker(i)));
    co_await duet::gather(std::move(tasks));
  };
  loop->run_until_complete(main());
  CHECK(order == std::vector<int>{1, 2, 3, 4, 5});
  CHECK(sem.value() == 1);
}

TEST_CASE("Semaphore: a waiter woken then cancelled gives its slot back, nobody hangs (test_acquire_hang, "
          "gh-90155)",
          "[locks][semaphore]") {
  TestLoop loop;
  duet::Semaphore sem(0);
  std::vector<int> got;
  auto worker = [&](int id) -> Coro<void> {
    co_await sem.acquire();
    got.push_back(id);
  };
  auto main = [&]() -> Coro<void> {
    auto t1 = duet::create_task(worker(1));
    auto t2 = duet::create_task(worker(2));
    co_await duet::yield_now();
    sem.release();  // wakes t1 ...
    t1.cancel();    // ... which will not take it
    co_await duet::gather(duet::return_exceptions, t1, t2);
  };
  loop->run_until_complete(main());
  CHECK(got == std::vector<int>{2});
  CHECK(sem.value() == 0);
}

TEST_CASE("Semaphore: a newcomer waits behind woken waiters even when a slot looks free (test_acquire_fifo_order_2)",
          "[locks][semaphore]") {
  TestLoop loop;
  duet::Semaphore sem(1);
  std::vector<std::string> order;
  auto worker = [&](std::string name) -> Coro<void> {
    co_await sem.acquire();
    order.push_back(name);
    sem.release();
  };
  auto main = [&]() -> Coro<void> {
    co_await sem.acquire();
    auto waiting = duet::create_task(worker("waiting"));
    co_await duet::yield_now();
    sem.release();
    auto newcomer = duet::create_task(worker("newcomer"));
    co_await duet::gather(waiting, newcomer);
  };
  loop->run_until_complete(main());
  CHECK(order == std::vector<std::string>{"waiting", "newcomer"});
}

// ---- Barrier ---------------------------------------------------------------------

TEST_CASE("Barrier: parties wait for each other and get distinct indices (test_barrier / test_barrier_parties)",
          "[locks][barrier]") {
  TestLoop loop;
  CHECK_THROWS_AS(duet::Barrier(0), duet::ValueError);
  duet::Barrier barrier(3);
  std::vector<std::size_t> indices;
  int passed = 0;
  auto party = [&](int delay_ms) -> Coro<void> {
    co_await duet::sleep(std::chrono::milliseconds(delay_ms));
    std::size_t i = co_await barrier.wait();
    indices.push_back(i);
    ++passed;
  };
  auto main = [&]() -> Coro<void> {
    auto a = duet::create_task(party(1));
    auto b = duet::create_task(party(2));
    co_await duet::sleep(5ms);
    CHECK(barrier.n_waiting() == 2);
    CHECK(passed == 0);
    auto c = duet::create_task(party(3));
    co_await duet::gather(a, b, c);
  };
  loop->run_until_complete(main());
  CHECK(passed == 3);
  std::sort(indices.begin(), indices.end());
  CHECK(indices == std::vector<std::size_t>{0, 1, 2});
  CHECK(barrier.n_waiting() == 0);
  CHECK_FALSE(barrier.broken());
}

TEST_CASE("Barrier: reusable for several rounds (test_wait_more_than_parties / test_draining_state)",
          "[locks][barrier]") {
  TestLoop loop;
  duet::Barrier barrier(2);
  int rounds_done = 0;
  auto party = [&]() -> Coro<void> {
    for (int round = 0; round < 3; ++round) {
      co_await barrier.wait();
      co_await duet::yield_now();
    }
    ++rounds_done;
  };
  auto main = [&]() -> Coro<void> {
    auto a = duet::create_task(party());
    auto b = duet::create_task(party());
    co_await duet::gather(a, b);
  };
  loop->run_until_complete(main());
  CHECK(rounds_done == 2);
}

TEST_CASE("Barrier: reset and abort wake the waiters with BrokenBarrierError (test_reset_barrier / "
          "test_abort_barrier)",
          "[locks][barrier]") {
  TestLoop loop;
  duet::Barrier barrier(3);
  int broken = 0;
  auto party = [&]() -> Coro<void> {
    try {
      co_await barrier.wait();
    } catch (const duet::BrokenBarrierError&) {
      ++broken;
    }
  };
  auto main = [&]() -> Coro<void> {
    auto a = duet::create_task(party());
    auto b = duet::create_task(party());
    co_await duet::sleep(1ms);
    co_await barrier.reset();
    co_await duet::gather(a, b);
    CHECK(broken == 2);
    CHECK_FALSE(barrier.broken());
    CHECK(barrier.n_waiting() == 0);

    auto c = duet::create_task(party());
    co_await duet::sleep(1ms);
    co_await barrier.abort();
    co_await c;
    CHECK(broken == 3);
    CHECK(barrier.broken());
    co_await party();  // a broken barrier refuses at once
    CHECK(broken == 4);
  };
  loop->run_until_complete(main());
}

TEST_CASE("Barrier: a cancelled party leaves the count consistent (test_filling_tasks_cancel_one)",
          "[locks][barrier]") {
  TestLoop loop;
  duet::Barrier barrier(2);
  auto party = [&]() -> Coro<std::size_t> {
    std::size_t i = co_await barrier.wait();
    co_return i;
  };
  auto main = [&]() -> Coro<void> {
    auto a = duet::create_task(party());
    co_await duet::sleep(1ms);
    CHECK(barrier.n_waiting() == 1);
    a.cancel();
    bool raised = co_await duet::test::raises<duet::CancelledError>(a);
    CHECK(raised);
    CHECK(barrier.n_waiting() == 0);
    auto b = duet::create_task(party());
    auto c = duet::create_task(party());
    auto [ib, ic] = co_await duet::gather(b, c);
    CHECK(ib + ic == 1);
  };
  loop->run_until_complete(main());
}

TEST_CASE("a loop closed with tasks waiting on primitives destroys them cleanly", "[locks]") {
  duet::Lock lock;
  duet::Condition cond;
  duet::Semaphore sem(0);
  {
    TestLoop loop;
    loop->set_exception_handler([](duet::Loop&, const duet::ExceptionContext&) {});
    auto holder = [&]() -> Coro<void> {
      auto held = co_await cond.scoped();
      co_await cond.wait();  // never notified
    };
    auto locker = [&]() -> Coro<void> {
      co_await lock.acquire();
      co_await lock.acquire();  // deadlocks on itself
    };
    auto sem_waiter = [&]() -> Coro<void> { co_await sem.acquire(); };
    auto t1 = loop->create_task(holder());
    auto t2 = loop->create_task(locker());
    auto t3 = loop->create_task(sem_waiter());
    loop.run_until_idle();
    loop->close();
  }
  CHECK(lock.waiting() == 0);
  CHECK(cond.waiting() == 0);
  CHECK_FALSE(cond.locked());  // the holder was waiting, so the lock was free
}
