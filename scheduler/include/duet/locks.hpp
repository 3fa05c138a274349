// duet/locks.hpp — asyncio's synchronisation primitives (locks.py, 3.13):
// Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier.
//
//   co_await lock.acquire(); ... lock.release();
//   { auto held = co_await lock.scoped(); ... }      // released on every exit path
//   co_await event.wait();  event.set();
//   { auto held = co_await cond.scoped(); co_await cond.wait_for([&] { return ready; }); }
//
// Fairness and cancellation, as asyncio after its fixes:
//  * waiters are served first come, first served; a task woken by
//    release()/set()/notify() cannot be overtaken by a newcomer (the
//    newcomer queues behind it);
//  * a waiter cancelled after it was woken passes the wakeup on (Lock,
//    Semaphore: gh-90155; Condition: gh-112202), so no wakeup is lost;
//  * Condition.wait() re-acquires the lock before it returns or throws,
//    even when cancelled.
// Uncontended operations complete without suspending (and so, as in
// asyncio, without a trip through the loop and without a cancellation
// point).
//
// Every primitive is bound to the loop that first uses it (even
// uncontended); use from another loop throws RuntimeError. Loop thread only.
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

#include "duet/detail/waiters.hpp"
#include "duet/errors.hpp"

namespace duet {

/// Ownership of a Lock, Semaphore or BoundedSemaphore, released when the
/// guard goes (normal exit, exception or cancellation) or by release().
template <class L>
class [[nodiscard]] Guard {
 public:
  explicit Guard(L& owned) noexcept : owned_(&owned) {}
  Guard(Guard&& other) noexcept : owned_(std::exchange(other.owned_, nullptr)) {}
  Guard& operator=(Guard&&) = delete;
  ~Guard() {
    if (!owned_) return;
    try {
      owned_->release();
    } catch (...) {
      // Not held any more: only when the guarding task was destroyed while
      // it waited in Condition::wait (its loop closed); nothing to release.
    }
  }
  /// Releases now rather than at the end of the scope.
  void release() {
    if (owned_) std::exchange(owned_, nullptr)->release();
  }
  bool owns() const noexcept { return owned_ != nullptr; }

 private:
  L* owned_;
};

namespace detail {

/// co_await on an operation of Owner: completes at once when
/// owner.op_try_now() succeeds, else runs owner.op_wait() inline. With
/// kScoped, the result is a Guard<Owner>.
template <class Owner, bool kScoped>
class [[nodiscard]] OpAwaiter {
 public:
  explicit OpAwaiter(Owner& owner) noexcept : owner_(owner) {}
  bool await_ready() { return owner_.op_try_now(); }
  coro::transfer_t await_suspend(coro::coroutine_handle<> caller) {
    return slow_.start(owner_.op_wait(), caller);
  }
  auto await_resume() {
    if (slow_.started()) slow_.result();
    if constexpr (kScoped) return Guard<Owner>(owner_);
  }

 private:
  Owner& owner_;
  SlowPath<void> slow_;
};

}  // namespace detail

/// asyncio.Lock: a mutex for tasks (not reentrant, not owned by a task).
class Lock {
 public:
  Lock() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  /// co_await lock.acquire(): waits until the lock is free, then takes it.
  detail::OpAwaiter<Lock, false> acquire() noexcept { return detail::OpAwaiter<Lock, false>(*this); }
  /// co_await lock.scoped(): acquire() and a Guard that releases it.
  detail::OpAwaiter<Lock, true> scoped() noexcept { return detail::OpAwaiter<Lock, true>(*this); }
  /// Frees the lock and wakes the first waiter; RuntimeError if not locked.
  void release();
  bool locked() const noexcept { return locked_; }
  /// Tasks waiting (including one woken and about to take the lock).
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  template <class, bool>
  friend class detail::OpAwaiter;
  bool op_try_now();
  Coro<void> op_wait();
  void wake_up_first();

  detail::LoopBound bound_{"Lock"};
  detail::WaiterList<bool> waiters_;  // woken ones stay until they run
  bool locked_ = false;
};

/// asyncio.Event: a flag tasks can wait for.
class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  bool is_set() const noexcept { return value_; }
  /// Sets the flag and wakes every waiter.
  void set();
  /// Clears the flag; later wait()s block again.
  void clear() noexcept { value_ = false; }
  /// co_await event.wait(): returns at once if set, else when set() runs.
  detail::OpAwaiter<Event, false> wait() noexcept { return detail::OpAwaiter<Event, false>(*this); }

 private:
  template <class, bool>
  friend class detail::OpAwaiter;
  bool op_try_now();
  Coro<void> op_wait();

  detail::LoopBound bound_{"Event"};
  detail::WaiterList<bool> waiters_;
  bool value_ = false;
};

/// asyncio.Condition: a condition variable over a Lock (its own, or one
/// given and shared with other conditions).
class Condition {
 public:
  Condition() : own_(std::make_unique<Lock>()), lock_(own_.get()) {}
  explicit Condition(Lock& lock) noexcept : lock_(&lock) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  auto acquire() noexcept { return lock_->acquire(); }
  auto scoped() noexcept { return lock_->scoped(); }
  void release() { lock_->release(); }
  bool locked() const noexcept { return lock_->locked(); }

  /// Releases the lock, waits for a notify, re-acquires the lock (also when
  /// cancelled, before CancelledError propagates). RuntimeError if the lock
  /// is not held. A wakeup this task can no longer use goes to another
  /// waiter (3.13).
  Coro<void> wait();

  /// wait() until predicate() is true; returns its last value.
  template <class Predicate>
  Coro<std::invoke_result_t<Predicate&>> wait_for(Predicate predicate) {
    auto result = predicate();
    while (!result) {
      co_await wait();
      result = predicate();
    }
    co_return result;
  }

  /// Wakes up to n waiters (first come, first served); the lock must be held.
  void notify(std::size_t n = 1);
  void notify_all();
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  void wake(std::size_t n);

  std::unique_ptr<Lock> own_;
  Lock* lock_;
  detail::LoopBound bound_{"Condition"};
  detail::WaiterList<bool> waiters_;
};

/// asyncio.Semaphore: a counter of free slots.
class Semaphore {
 public:
  /// ValueError if value < 0.
  explicit Semaphore(long value = 1);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  detail::OpAwaiter<Semaphore, false> acquire() noexcept { return detail::OpAwaiter<Semaphore, false>(*this); }
  detail::OpAwaiter<Semaphore, true> scoped() noexcept { return detail::OpAwaiter<Semaphore, true>(*this); }
  /// Frees a slot and wakes the first waiter.
  void release();
  /// No slot free now, or tasks are already waiting for one.
  bool locked() const noexcept;
  long value() const noexcept { return value_; }

 protected:
  template <class, bool>
  friend class detail::OpAwaiter;
  bool op_try_now();
  Coro<void> op_wait();
  bool wake_up_next();

  detail::LoopBound bound_;
  detail::WaiterList<bool> waiters_;
  long value_;

  Semaphore(long value, const char* kind);
};

/// asyncio.BoundedSemaphore: release() beyond the initial value throws
/// ValueError.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(long value = 1);

  detail::OpAwaiter<BoundedSemaphore, false> acquire() noexcept {
    return detail::OpAwaiter<BoundedSemaphore, false>(*this);
  }
  detail::OpAwaiter<BoundedSemaphore, true> scoped() noexcept {
    return detail::OpAwaiter<BoundedSemaphore, true>(*this);
  }
  void release();

 private:
  template <class, bool>
  friend class detail::OpAwaiter;
  long bound_value_;
};

/// asyncio.Barrier (3.11): `parties` tasks wait until all have arrived.
class Barrier {
 public:
  /// ValueError if parties < 1.
  explicit Barrier(std::size_t parties);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  /// Waits for the other parties; returns this task's arrival index
  /// (0 .. parties-1). BrokenBarrierError if the barrier is aborted or
  /// reset meanwhile, or was broken already.
  Coro<std::size_t> wait();
  /// Back to the initial state; tasks waiting get BrokenBarrierError.
  Coro<void> reset();
  /// Breaks the barrier: waiting and future wait()s get BrokenBarrierError.
  Coro<void> abort();

  std::size_t parties() const noexcept { return parties_; }
  /// Tasks waiting while the barrier fills.
  std::size_t n_waiting() const noexcept { return state_ == State::filling ? count_ : 0; }
  bool broken() const noexcept { return state_ == State::broken; }

 private:
  enum class State { filling, draining, resetting, broken };
  Coro<void> block();
  Coro<void> wait_released();
  void exit();

  Condition cond_;
  std::size_t parties_;
  State state_ = State::filling;
  std::size_t count_ = 0;
};

}  // namespace duet
