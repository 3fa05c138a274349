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
// its turn — the item is reserved for it, so a task arriving later (or a
// get_nowait()) cannot take it first; asyncio lets the newcomer take it
// and sends the woken getter to the back of the line. The same holds for
// putters and free slots. Cancellation never loses an item: a getter
// cancelled after it was woken hands its reservation to the next getter
// and the item stays in the queue; a cancelled put() never stored its
// item. The waiting needs no coroutine of its own: the awaiter holds the
// waiter, so a hand-off costs about what a future hand-off does.
//
// Items are moved in and out, never copied (move-only T works). Bound to
// the loop that first uses it. Loop thread only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <type_traits>
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
  using Waiter = detail::Waiter<bool>;
  using Waiters = detail::WaiterList<bool>;

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

  /// co_await q.put(std::move(item)): waits while the queue is full.
  /// Throws QueueShutDown once the queue is shut down. The item is moved
  /// from only once it is stored: a put that fails or is cancelled leaves
  /// it with the caller (it must live until the co_await completes, as a
  /// temporary in the same expression does). A const T& is copied first.
  PutAwaiter put(T&& item) noexcept { return PutAwaiter(*this, &item); }
  PutAwaiter put(const T& item)
    requires std::is_copy_constructible_v<T>
  {
    return PutAwaiter(*this, item);
  }
  /// T item = co_await q.get(): waits while the queue is empty. Throws
  /// QueueShutDown once the queue is shut down and empty.
  GetAwaiter get() noexcept { return GetAwaiter(*this); }

  /// Stores item now: QueueFull if full (or the free slots are promised to
  /// woken putters), QueueShutDown if shut down.
  /// (Moved from only on success: a refused item stays with the caller.)
  void put_nowait(T&& item) {
    if (shut_down_) throw QueueShutDown();
    if (!has_free_slot()) throw QueueFull();  // also when the free slots are promised to woken putters
    store(std::move(item));
  }
  void put_nowait(const T& item)
    requires std::is_copy_constructible_v<T>
  {
    T copy(item);
    put_nowait(std::move(copy));
  }
  /// Takes an item now: QueueEmpty if empty or every item is promised to a
  /// woken getter (QueueShutDown if empty and shut down).
  T get_nowait() {
    if (empty()) {
      if (shut_down_) throw QueueShutDown();
      throw QueueEmpty();
    }
    if (store_.size() <= woken_getters_) throw QueueEmpty();  // every item is promised to a woken getter
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
    while (wake_next(getters_, woken_getters_, false)) {
    }
    while (wake_next(putters_, woken_putters_, false)) {
    }
  }

  /// What co_await q.get() uses. Waits in the getters' line; a put wakes
  /// the first getter and reserves an item for it.
  class [[nodiscard]] GetAwaiter {
   public:
    explicit GetAwaiter(BasicQueue& queue) noexcept : queue_(queue) {}
    GetAwaiter(GetAwaiter&& other) noexcept : queue_(other.queue_) {}  // before it is awaited
    GetAwaiter& operator=(GetAwaiter&&) = delete;
    ~GetAwaiter() { leave(); }  // the awaiting coroutine was destroyed mid-wait

    bool await_ready() {
      queue_.bound_.bind();
      if (queue_.may_get_now()) {
        now_.emplace(queue_.take());
        return true;
      }
      // Shut down, and nothing left that is not promised to a woken getter:
      // no put can come, so waiting would be forever.
      if (queue_.shut_down_ && queue_.qsize() <= queue_.woken_getters_) throw QueueShutDown();
      return false;
    }
    void await_suspend(coro::coroutine_handle<> caller) {
      waiter_.emplace(queue_.bound_.bind());
      queue_.getters_.push_back(*waiter_);
      inner_.emplace(waiter_->future.operator co_await());
      inner_->await_suspend(caller);
    }
    T await_resume() {
      if (now_) return std::move(*now_);
      try {
        inner_->await_resume();
      } catch (...) {
        // Cancelled. A reservation this getter cannot use goes to the next.
        if (leave()) queue_.pass_get_turn();
        throw;
      }
      leave();
      // The reserved item, unless shutdown(immediate) dropped it; woken by
      // shutdown with nothing left: QueueShutDown.
      if (queue_.qsize() > queue_.woken_getters_) return queue_.take();
      throw QueueShutDown();
    }

   private:
    // Leaves the line; true if it held a reservation (now released).
    bool leave() noexcept {
      if (!waiter_) return false;
      queue_.getters_.remove(*waiter_);
      const bool reserved = holds_reservation(*waiter_);
      if (reserved) --queue_.woken_getters_;
      waiter_.reset();
      return reserved;
    }

    BasicQueue& queue_;
    std::optional<T> now_;
    std::optional<Waiter> waiter_;
    std::optional<detail::FutureAwaiter<bool>> inner_;
  };

  /// What co_await q.put(item) uses. Waits in the putters' line; a get
  /// wakes the first putter and reserves a free slot for it.
  class [[nodiscard]] PutAwaiter {
   public:
    PutAwaiter(BasicQueue& queue, T* item) noexcept : queue_(queue), item_(item) {}
    PutAwaiter(BasicQueue& queue, const T& item) : queue_(queue), copy_(item), item_(&*copy_) {}
    PutAwaiter(PutAwaiter&& other) noexcept(std::is_nothrow_move_constructible_v<T>)  // before it is awaited
        : queue_(other.queue_), copy_(std::move(other.copy_)), item_(copy_ ? &*copy_ : other.item_) {}
    PutAwaiter& operator=(PutAwaiter&&) = delete;
    ~PutAwaiter() { leave(); }

    bool await_ready() {
      queue_.bound_.bind();
      if (queue_.shut_down_) throw QueueShutDown();
      if (!queue_.may_put_now()) return false;
      queue_.store(std::move(*item_));
      return true;
    }
    void await_suspend(coro::coroutine_handle<> caller) {
      waiter_.emplace(queue_.bound_.bind());
      queue_.putters_.push_back(*waiter_);
      inner_.emplace(waiter_->future.operator co_await());
      inner_->await_suspend(caller);
    }
    void await_resume() {
      if (!waiter_) return;  // stored at once
      try {
        inner_->await_resume();
      } catch (...) {
        if (leave()) queue_.pass_put_turn();
        throw;
      }
      leave();
      if (queue_.shut_down_) throw QueueShutDown();
      queue_.store(std::move(*item_));  // into the reserved slot
    }

   private:
    bool leave() noexcept {
      if (!waiter_) return false;
      queue_.putters_.remove(*waiter_);
      const bool reserved = holds_reservation(*waiter_);
      if (reserved) --queue_.woken_putters_;
      waiter_.reset();
      return reserved;
    }

    BasicQueue& queue_;
    std::optional<T> copy_;  // put(const T&): the copy to store
    T* item_;                // what is stored (moved from) once there is room
    std::optional<Waiter> waiter_;
    std::optional<detail::FutureAwaiter<bool>> inner_;
  };

 private:

  // Fairness by reservation. A waiter woken by a put (get) has an item
  // (a free slot) set aside for it until it runs:
  //   woken_getters_ <= qsize()            (while not shut down)
  //   qsize() + woken_putters_ <= maxsize  (bounded queues)
  // so a newcomer, or get_nowait()/put_nowait(), cannot take it first, and
  // a woken waiter never has to wait again. A waiter woken by shutdown()
  // holds no reservation (its future's result is false).
  static bool holds_reservation(const Waiter& waiter) noexcept {
    return waiter.future.done() && !waiter.future.cancelled() && waiter.future.result();
  }

  bool has_free_slot() const noexcept { return maxsize_ == 0 || store_.size() + woken_putters_ < maxsize_; }
  bool may_get_now() const noexcept { return getters_.empty() && store_.size() > woken_getters_; }
  bool may_put_now() const noexcept { return putters_.empty() && has_free_slot(); }

  void store(T&& item) {
    store_.push(std::move(item));
    ++unfinished_;
    finished_.clear();
    wake_next(getters_, woken_getters_, true);
  }

  T take() {
    T item = store_.pop();
    wake_next(putters_, woken_putters_, true);
    return item;
  }

  // A cancelled getter gives back its reservation: the next getter gets it.
  void pass_get_turn() {
    if (store_.size() > woken_getters_) wake_next(getters_, woken_getters_, true);
  }
  void pass_put_turn() {
    if (has_free_slot()) wake_next(putters_, woken_putters_, true);
  }

  // asyncio's _wakeup_next: the first waiter not cancelled leaves the line
  // and is woken (with a reservation unless it is shutdown waking it).
  static bool wake_next(Waiters& waiters, std::size_t& reserved, bool reserve) {
    while (Waiter* waiter = waiters.pop_front()) {
      if (!waiter->future.done()) {
        waiter->future.set_result(reserve);
        if (reserve) ++reserved;
        return true;
      }
    }
    return false;
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
