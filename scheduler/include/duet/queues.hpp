// duet/queues.hpp — asyncio's queues (queues.py, 3.13): Queue (FIFO),
// LifoQueue, PriorityQueue, with task_done/join and shutdown.
//
//   duet::Queue<Job> jobs(100);                 // maxsize 100; 0: unbounded
//   co_await jobs.put(std::move(job));          // waits while full
//   Job next = co_await jobs.get();             // waits while empty
//   jobs.task_done();  co_await jobs.join();
//   jobs.shutdown();                            // put throws QueueShutDown; get drains, then throws
//
// Behaviour beyond asyncio's, for fairness: a getter woken by a put keeps
// its turn — a task arriving later waits behind it instead of taking the
// item first (asyncio lets the newcomer take it and sends the woken getter
// to the back of the line); the same holds for putters and free space.
// When the item a woken getter expected was taken by get_nowait() it waits
// again at the front. Cancellation never loses an item: a getter cancelled
// after it was woken passes the wakeup to the next one and leaves the item
// in the queue; a cancelled put() never stored its item.
//
// Items are moved in and out, never copied (move-only T works). Bound to
// the loop that first waits on it. Loop thread only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "duet/detail/waiters.hpp"
#include "duet/errors.hpp"
#include "duet/locks.hpp"

namespace duet {
namespace detail {

template <class T>
struct FifoStore {
  std::deque<T> items;
  void push(T&& item) { items.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items.front());
    items.pop_front();
    return item;
  }
  std::size_t size() const noexcept { return items.size(); }
};

template <class T>
struct LifoStore {
  std::vector<T> items;
  void push(T&& item) { items.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items.back());
    items.pop_back();
    return item;
  }
  std::size_t size() const noexcept { return items.size(); }
};

/// Smallest first per Compare (asyncio's heapq order).
template <class T, class Compare>
struct PriorityStore {
  std::vector<T> items;
  Compare compare;
  auto later() const {
    return [this](const T& a, const T& b) { return compare(b, a); };
  }
  void push(T&& item) {
    items.push_back(std::move(item));
    std::push_heap(items.begin(), items.end(), later());
  }
  T pop() {
    std::pop_heap(items.begin(), items.end(), later());
    T item = std::move(items.back());
    items.pop_back();
    return item;
  }
  std::size_t size() const noexcept { return items.size(); }
};

}  // namespace detail

template <class T, class Store>
class BasicQueue {
 public:
  class GetAwaiter;
  class PutAwaiter;

  /// maxsize 0: unbounded.
  explicit BasicQueue(std::size_t maxsize = 0, Store store = Store()) : store_(std::move(store)), maxsize_(maxsize) {
    finished_.set();
  }
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;

  std::size_t qsize() const noexcept { return store_.size(); }
  std::size_t maxsize() const noexcept { return maxsize_; }
  bool empty() const noexcept { return store_.size() == 0; }
  bool full() const noexcept { return maxsize_ > 0 && store_.size() >= maxsize_; }
  bool is_shut_down() const noexcept { return shut_down_; }

  /// co_await q.put(item): waits while the queue is full. Throws
  /// QueueShutDown once the queue is shut down.
  PutAwaiter put(T item) { return PutAwaiter(*this, std::move(item)); }
  /// T item = co_await q.get(): waits while the queue is empty. Throws
  /// QueueShutDown once the queue is shut down and empty.
  GetAwaiter get() noexcept { return GetAwaiter(*this); }

  /// Stores item now: QueueFull if full, QueueShutDown if shut down.
  void put_nowait(T item) {
    if (shut_down_) throw QueueShutDown();
    if (full()) throw QueueFull();
    store(std::move(item));
  }
  /// Takes an item now: QueueEmpty if empty (QueueShutDown if also shut
  /// down).
  T get_nowait() {
    if (empty()) {
      if (shut_down_) throw QueueShutDown();
      throw QueueEmpty();
    }
    return take();
  }

  /// One item taken earlier is processed; ValueError if called more times
  /// than items were put.
  void task_done() {
    if (unfinished_ == 0) throw ValueError("task_done() called too many times");
    if (--unfinished_ == 0) finished_.set();
  }
  /// Waits until every item put has been marked task_done().
  Coro<void> join() {
    if (unfinished_ > 0) co_await finished_.wait();
  }
  std::size_t unfinished_tasks() const noexcept { return unfinished_; }

  /// put() and put_nowait() throw QueueShutDown from now on; get() drains
  /// what is left, then throws it. immediate: the items left are dropped
  /// (and count as done for join()). Waiters are woken to see it.
  void shutdown(bool immediate = false) {
    shut_down_ = true;
    if (immediate) {
      while (!empty()) {
        (void)store_.pop();
        if (unfinished_ > 0) --unfinished_;
      }
      if (unfinished_ == 0) finished_.set();
    }
    while (wake_next(getters_, woken_getters_)) {
    }
    while (wake_next(putters_, woken_putters_)) {
    }
  }

  class [[nodiscard]] GetAwaiter {
   public:
    explicit GetAwaiter(BasicQueue& queue) noexcept : queue_(queue) {}
    bool await_ready() {
      queue_.bound_.bind();
      if (!queue_.may_get_now()) return false;
      now_.emplace(queue_.take());
      return true;
    }
    coro::coroutine_handle<> await_suspend(coro::coroutine_handle<> caller) {
      return slow_.start(queue_.get_slow(), caller);
    }
    T await_resume() {
      if (now_) return std::move(*now_);
      return slow_.result();
    }

   private:
    BasicQueue& queue_;
    std::optional<T> now_;
    detail::SlowPath<T> slow_;
  };

  class [[nodiscard]] PutAwaiter {
   public:
    PutAwaiter(BasicQueue& queue, T item) : queue_(queue), item_(std::move(item)) {}
    bool await_ready() {
      queue_.bound_.bind();
      if (queue_.shut_down_) throw QueueShutDown();
      if (!queue_.may_put_now()) return false;
      queue_.store(std::move(item_));
      return true;
    }
    coro::coroutine_handle<> await_suspend(coro::coroutine_handle<> caller) {
      return slow_.start(queue_.put_slow(std::move(item_)), caller);
    }
    void await_resume() {
      if (slow_.started()) slow_.result();
    }

   private:
    BasicQueue& queue_;
    T item_;
    detail::SlowPath<void> slow_;
  };

 private:
  using Waiter = detail::Waiter<bool>;
  using Waiters = detail::WaiterList<bool>;

  // Counts a woken waiter until it runs (also if its frame is destroyed
  // first), so that newcomers queue behind it.
  class Woken {
   public:
    Woken(const Waiter& waiter, std::size_t& count) noexcept : waiter_(waiter), count_(count) {}
    Woken(const Woken&) = delete;
    Woken& operator=(const Woken&) = delete;
    ~Woken() { settle(); }
    // The waiter is running again: it no longer holds a turn.
    void settle() noexcept {
      if (!settled_ && waiter_.future.done() && !waiter_.future.cancelled()) --count_;
      settled_ = true;
    }

   private:
    const Waiter& waiter_;
    std::size_t& count_;
    bool settled_ = false;
  };

  bool may_get_now() const noexcept { return !empty() && getters_.empty() && woken_getters_ == 0; }
  bool may_put_now() const noexcept { return !full() && putters_.empty() && woken_putters_ == 0; }

  void store(T&& item) {
    store_.push(std::move(item));
    ++unfinished_;
    finished_.clear();
    wake_next(getters_, woken_getters_);
  }

  T take() {
    T item = store_.pop();
    wake_next(putters_, woken_putters_);
    return item;
  }

  // asyncio's _wakeup_next: the first waiter not cancelled leaves the line
  // and is woken.
  static bool wake_next(Waiters& waiters, std::size_t& woken) {
    while (Waiter* waiter = waiters.pop_front()) {
      if (!waiter->future.done()) {
        waiter->future.set_result(true);
        ++woken;
        return true;
      }
    }
    return false;
  }

  // Waits for a turn in `waiters` (at the front when `first`); on
  // cancellation passes a wakeup it can no longer use to the next waiter
  // when `can_use_wakeup()` says there is something for it.
  template <class CanUse>
  Coro<void> wait_turn(Waiters& waiters, std::size_t& woken, bool front, CanUse can_use_wakeup) {
    Waiter waiter(bound_.bind());
    Woken turn(waiter, woken);
    if (front)
      waiters.push_front(waiter);
    else
      waiters.push_back(waiter);
    struct Unlink {
      Waiters& waiters;
      Waiter& waiter;
      ~Unlink() { waiters.remove(waiter); }  // a woken waiter was unlinked by its waker
    } unlink{waiters, waiter};
    try {
      co_await waiter.future;
    } catch (...) {
      waiters.remove(waiter);
      const bool was_woken = waiter.future.done() && !waiter.future.cancelled();
      turn.settle();
      if (was_woken && can_use_wakeup()) wake_next(waiters, woken);
      throw;
    }
    turn.settle();
  }

  Coro<T> get_slow() {
    // Waits at least once when others are ahead, then until an item is
    // there; a woken getter that finds the queue empty waits again at the
    // front (its item was taken by get_nowait()).
    bool woken_before = false;
    while (!woken_before || empty()) {
      if (shut_down_ && empty()) throw QueueShutDown();
      co_await wait_turn(getters_, woken_getters_, woken_before, [this] { return !empty(); });
      woken_before = true;
    }
    T item = take();
    if (!empty()) wake_next(getters_, woken_getters_);  // more items than woken getters
    co_return item;
  }

  Coro<void> put_slow(T item) {
    bool woken_before = false;
    while (!woken_before || full()) {
      if (shut_down_) throw QueueShutDown();
      co_await wait_turn(putters_, woken_putters_, woken_before, [this] { return !full(); });
      woken_before = true;
    }
    if (shut_down_) throw QueueShutDown();
    store(std::move(item));
    if (!full()) wake_next(putters_, woken_putters_);
  }

  detail::LoopBound bound_{"Queue"};
  Store store_;
  std::size_t maxsize_;
  Waiters getters_;
  Waiters putters_;
  std::size_t woken_getters_ = 0;  // woken, not yet running: they keep their turn
  std::size_t woken_putters_ = 0;
  std::size_t unfinished_ = 0;
  Event finished_;
  bool shut_down_ = false;
};

/// asyncio.Queue: first in, first out.
template <class T>
class Queue : public BasicQueue<T, detail::FifoStore<T>> {
 public:
  explicit Queue(std::size_t maxsize = 0) : BasicQueue<T, detail::FifoStore<T>>(maxsize) {}
};

/// asyncio.LifoQueue: last in, first out.
template <class T>
class LifoQueue : public BasicQueue<T, detail::LifoStore<T>> {
 public:
  explicit LifoQueue(std::size_t maxsize = 0) : BasicQueue<T, detail::LifoStore<T>>(maxsize) {}
};

/// asyncio.PriorityQueue: the smallest item per Compare first.
template <class T, class Compare = std::less<T>>
class PriorityQueue : public BasicQueue<T, detail::PriorityStore<T, Compare>> {
 public:
  explicit PriorityQueue(std::size_t maxsize = 0, Compare compare = Compare())
      : BasicQueue<T, detail::PriorityStore<T, Compare>>(maxsize,
                                                          detail::PriorityStore<T, Compare>{{}, std::move(compare)}) {}
};

}  // namespace duet
