// The synchronisation primitives: each slow path is asyncio's (locks.py,
// 3.13) line for line, so that the fairness and cancellation fixes carry
// over; the notes name the fix each step comes from.
#include "duet/locks.hpp"

#include <exception>
#include <string>

namespace duet {
namespace detail {

Loop& LoopBound::bind_slow(Loop* running) {
  if (!running) throw RuntimeError(std::string("no running event loop (") + kind_ + " used outside a loop)");
  if (serial_ == 0) {
    loop_ = running;
    serial_ = running->serial();
    return *running;
  }
  throw RuntimeError(std::string("<") + kind_ + "> is bound to a different event loop");
}

}  // namespace detail

// ---- Lock ------------------------------------------------------------------------

bool Lock::op_try_now() {
  bound_.bind();
  if (locked_) return false;
  // Free, but a task already waiting (perhaps woken and about to run) goes
  // first; only cancelled waiters do not count.
  bool all_cancelled = true;
  waiters_.for_each([&](detail::Waiter<bool>& w) { return all_cancelled = w.future.cancelled(); });
  if (!all_cancelled) return false;
  locked_ = true;
  return true;
}

Coro<void> Lock::op_wait() {
  detail::Waiter<bool> waiter(bound_.bind());
  try {
    detail::WaiterList<bool>::Scope in_line(waiters_, waiter);
    co_await waiter.future;
  } catch (const CancelledError&) {
    // Keep the invariant: if the lock is free, the first waiter is woken
    // (this one may have been, and cannot use it now).
    if (!locked_) wake_up_first();
    throw;
  }
  locked_ = true;
}

void Lock::release() {
  if (!locked_) throw RuntimeError("Lock is not acquired.");
  locked_ = false;
  wake_up_first();
}

void Lock::wake_up_first() {
  detail::Waiter<bool>* first = waiters_.front();
  // done(): it was woken already (or cancelled) and will run.
  if (first && !first->future.done()) first->future.set_result(true);
}

// ---- Event -----------------------------------------------------------------------

bool Event::op_try_now() {
  bound_.bind();
  return value_;
}

Coro<void> Event::op_wait() {
  detail::Waiter<bool> waiter(bound_.bind());
  detail::WaiterList<bool>::Scope in_line(waiters_, waiter);
  co_await waiter.future;
}

void Event::set() {
  if (value_) return;
  value_ = true;
  waiters_.for_each([](detail::Waiter<bool>& w) {
    if (!w.future.done()) w.future.set_result(true);
    return true;
  });
}

// ---- Condition -------------------------------------------------------------------

Coro<void> Condition::wait() {
  if (!locked()) throw RuntimeError("cannot wait on un-acquired lock");
  Loop& loop = bound_.bind();
  lock_->release();
  std::exception_ptr error;
  {
    detail::Waiter<bool> waiter(loop);
    try {
      detail::WaiterList<bool>::Scope in_line(waiters_, waiter);
      co_await waiter.future;
    } catch (...) {
      error = std::current_exception();
    }
  }
  // Re-acquire the lock even if the wait was cancelled; a cancellation
  // while re-acquiring is kept and raised once the lock is held again.
  for (;;) {
    try {
      co_await lock_->acquire();
      break;
    } catch (const CancelledError&) {
      error = std::current_exception();
    }
  }
  if (error) {
    // The failure may have come after this task was notified: hand the
    // notification on, at worst a spurious wakeup (gh-112202, 3.13).
    wake(1);
    std::rethrow_exception(error);
  }
}

void Condition::notify(std::size_t n) {
  if (!locked()) throw RuntimeError("cannot notify on un-acquired lock");
  wake(n);
}

void Condition::notify_all() { notify(waiters_.size()); }

void Condition::wake(std::size_t n) {
  std::size_t woken = 0;
  waiters_.for_each([&](detail::Waiter<bool>& w) {
    if (woken >= n) return false;
    if (!w.future.done()) {
      ++woken;
      w.future.set_result(false);
    }
    return true;
  });
}

// ---- Semaphore -------------------------------------------------------------------

Semaphore::Semaphore(long value) : Semaphore(value, "Semaphore") {}

Semaphore::Semaphore(long value, const char* kind) : bound_(kind), value_(value) {
  if (value < 0) throw ValueError("Semaphore initial value must be >= 0");
}

bool Semaphore::locked() const noexcept {
  if (value_ == 0) return true;
  bool any_live = false;
  waiters_.for_each([&](detail::Waiter<bool>& w) { return !(any_live = !w.future.cancelled()); });
  return any_live;
}

bool Semaphore::op_try_now() {
  bound_.bind();
  if (locked()) return false;  // FIFO: tasks already waiting go first
  --value_;
  return true;
}

Coro<void> Semaphore::op_wait() {
  detail::Waiter<bool> waiter(bound_.bind());
  std::exception_ptr error;
  try {
    detail::WaiterList<bool>::Scope in_line(waiters_, waiter);
    co_await waiter.future;
  } catch (...) {
    // Woken (the slot was counted for us) but not going to take it: give
    // the slot back (gh-90155).
    if (waiter.future.done() && !waiter.future.cancelled()) ++value_;
    error = std::current_exception();
  }
  // Newcomers may have queued behind us although slots were free: wake as
  // many as the slots allow.
  while (value_ > 0 && wake_up_next()) {
  }
  if (error) std::rethrow_exception(error);
}

void Semaphore::release() {
  ++value_;
  wake_up_next();
}

bool Semaphore::wake_up_next() {
  bool woke = false;
  waiters_.for_each([&](detail::Waiter<bool>& w) {
    if (w.future.done()) return true;
    --value_;  // the slot is the woken task's from now on
    w.future.set_result(true);
    woke = true;
    return false;
  });
  return woke;
}

BoundedSemaphore::BoundedSemaphore(long value) : Semaphore(value, "BoundedSemaphore"), bound_value_(value) {}

void BoundedSemaphore::release() {
  if (value_ >= bound_value_) throw ValueError("BoundedSemaphore released too many times");
  Semaphore::release();
}

// ---- Barrier ---------------------------------------------------------------------

Barrier::Barrier(std::size_t parties) : parties_(parties) {
  if (parties < 1) throw ValueError("parties must be > 0");
}

Coro<std::size_t> Barrier::wait() {
  auto held = co_await cond_.scoped();
  co_await block();  // while the barrier drains or resets
  const std::size_t index = count_++;
  struct Leave {
    Barrier& barrier;
    ~Leave() {
      --barrier.count_;
      // Wakes tasks waiting for the barrier to drain. (The lock is not held
      // only when this task is destroyed mid-wait as its loop closes.)
      if (barrier.cond_.locked()) barrier.exit();
    }
  } leave{*this};
  if (index + 1 == parties_) {
    // The last to arrive releases the others; newcomers wait until they
    // have all left.
    state_ = State::draining;
    cond_.notify_all();
  } else {
    co_await wait_released();
  }
  co_return index;
}

Coro<void> Barrier::block() {
  co_await cond_.wait_for([this] { return state_ != State::draining && state_ != State::resetting; });
  if (state_ == State::broken) throw BrokenBarrierError("Barrier aborted");
}

Coro<void> Barrier::wait_released() {
  co_await cond_.wait_for([this] { return state_ != State::filling; });
  if (state_ == State::broken || state_ == State::resetting)
    throw BrokenBarrierError("Abort or reset of barrier");
}

void Barrier::exit() {
  if (count_ == 0) {
    if (state_ == State::resetting || state_ == State::draining) state_ = State::filling;
    cond_.notify_all();
  }
}

Coro<void> Barrier::reset() {
  auto held = co_await cond_.scoped();
  if (count_ > 0)
    state_ = State::resetting;  // wakes the waiters with BrokenBarrierError
  else
    state_ = State::filling;
  cond_.notify_all();
}

Coro<void> Barrier::abort() {
  auto held = co_await cond_.scoped();
  state_ = State::broken;
  cond_.notify_all();
}

}  // namespace duet
