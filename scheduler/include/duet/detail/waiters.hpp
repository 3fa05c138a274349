// duet/detail/waiters.hpp — what the synchronisation primitives and queues
// share: the loop binding, the FIFO of waiting futures, and an awaiter
// that completes at once on its fast path and otherwise runs a slow-path
// coroutine inline.
//
// asyncio keeps waiters in a deque of futures and removes a cancelled one
// with deque.remove (O(n)). Here a waiter is a node in the frame of the
// coroutine that waits, linked into an intrusive list: appending and
// removing are O(1) and allocate nothing beyond the future itself (whose
// state comes from the frame allocator).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include "duet/coro.hpp"
#include "duet/future.hpp"
#include "duet/loop.hpp"

namespace duet::detail {

/// A primitive is bound to the loop that first uses it (asyncio's
/// _LoopBoundMixin); waiting from another loop is a RuntimeError.
class LoopBound {
 public:
  explicit LoopBound(const char* kind) noexcept : kind_(kind) {}
  LoopBound(const LoopBound&) = delete;
  LoopBound& operator=(const LoopBound&) = delete;

  Loop& bind() {
    Loop* running = running_loop();
    if (running == loop_ && running && running->serial() == serial_) [[likely]]
      return *running;
    return bind_slow(running);
  }

 private:
  Loop& bind_slow(Loop* running);

  const char* kind_;
  Loop* loop_ = nullptr;
  std::uint64_t serial_ = 0;  // the loop's, in case its address is reused
};

/// One waiting coroutine: its future and its place in a WaiterList.
template <class T = void>
struct Waiter {
  explicit Waiter(Loop& loop) : future(loop) {}
  Future<T> future;
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  bool linked = false;
};

/// A FIFO of waiters; it does not own them. A waiter unlinks itself when
/// its coroutine ends (WaiterList::Scope), also when that coroutine is
/// destroyed without finishing.
template <class T = void>
class WaiterList {
 public:
  using Node = Waiter<T>;

  WaiterList() = default;
  WaiterList(const WaiterList&) = delete;
  WaiterList& operator=(const WaiterList&) = delete;
  ~WaiterList() {
    // The primitive is going away under its waiters: leave them unlinked,
    // so that their scopes do not touch this list.
    while (head_) pop_front();
  }

  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  Node* front() const noexcept { return head_; }

  void push_back(Node& node) noexcept {
    node.prev = tail_;
    node.next = nullptr;
    (tail_ ? tail_->next : head_) = &node;
    tail_ = &node;
    node.linked = true;
    ++size_;
  }

  void push_front(Node& node) noexcept {
    node.prev = nullptr;
    node.next = head_;
    (head_ ? head_->prev : tail_) = &node;
    head_ = &node;
    node.linked = true;
    ++size_;
  }

  void remove(Node& node) noexcept {
    if (!node.linked) return;
    (node.prev ? node.prev->next : head_) = node.next;
    (node.next ? node.next->prev : tail_) = node.prev;
    node.prev = node.next = nullptr;
    node.linked = false;
    --size_;
  }

  Node* pop_front() noexcept {
    Node* node = head_;
    if (node) remove(*node);
    return node;
  }

  /// Calls fn(node) for each waiter, front to back, while fn returns true.
  template <class F>
  void for_each(F&& fn) const {
    for (Node* node = head_; node;) {
      Node* next = node->next;  // fn may not unlink others, but may unlink node
      if (!fn(*node)) return;
      node = next;
    }
  }

  /// Links a waiter for the lifetime of a scope (asyncio's
  /// `try: await fut finally: waiters.remove(fut)`).
  class Scope {
   public:
    Scope(WaiterList& list, Node& node) noexcept : list_(list), node_(node) { list_.push_back(node_); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    ~Scope() { list_.remove(node_); }

   private:
    WaiterList& list_;
    Node& node_;
  };

 private:
  Node* head_ = nullptr;
  Node* tail_ = nullptr;
  std::size_t size_ = 0;
};

/// The slow half of a fast-path awaiter: runs a Coro<R> inline in the
/// awaiting task (as `co_await coro` would) and hands back its result.
template <class R>
class SlowPath {
 public:
  bool started() const noexcept { return coro_.has_value(); }
  coro::transfer_t start(Coro<R> slow, coro::coroutine_handle<> caller) {
    coro_.emplace(std::move(slow));
    return std::move(*coro_).operator co_await().await_suspend(caller);
  }
  R result() { return std::move(*coro_).operator co_await().await_resume(); }

 private:
  std::optional<Coro<R>> coro_;
};

}  // namespace duet::detail
