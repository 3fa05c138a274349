// duet/detail/ready_queue.hpp — the loop's ready queue: a FIFO ring buffer of
// node pointers whose capacity is a power of two and only grows.
//
// asyncio uses a deque; a ring buffer gives the same FIFO with one array, no
// allocation in steady state, and the "run exactly the n callbacks present
// when the iteration started" rule is a counter.
#pragma once

#include <cstddef>
#include <memory>

#include "duet/detail/assert.hpp"

namespace duet::detail {

struct HandleNode;

class ReadyQueue {
 public:
  ReadyQueue() = default;
  ReadyQueue(const ReadyQueue&) = delete;
  ReadyQueue& operator=(const ReadyQueue&) = delete;

  bool empty() const noexcept { return head_ == tail_; }
  std::size_t size() const noexcept { return tail_ - head_; }

  void push(HandleNode* node) {
    if (tail_ - head_ == capacity_) grow();
    slots_[tail_++ & (capacity_ - 1)] = node;
  }

  HandleNode* pop() noexcept {
    DUET_ASSERT(!empty());
    return slots_[head_++ & (capacity_ - 1)];
  }

 private:
  void grow() {
    std::size_t cap = capacity_ ? capacity_ * 2 : 64;
    auto bigger = std::make_unique<HandleNode*[]>(cap);
    std::size_t n = size();
    for (std::size_t i = 0; i < n; ++i) bigger[i] = slots_[(head_ + i) & (capacity_ - 1)];
    slots_ = std::move(bigger);
    capacity_ = cap;
    head_ = 0;
    tail_ = n;
  }

  // head_ and tail_ only increase; their difference is the size. Indices
  // wrap through the mask, so 64-bit counters never overflow in practice.
  std::unique_ptr<HandleNode*[]> slots_;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

}  // namespace duet::detail
