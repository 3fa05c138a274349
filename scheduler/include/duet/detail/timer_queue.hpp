// duet/detail/timer_queue.hpp — the scheduled timers: a binary min-heap of
// (deadline, sequence, node), with lazy cancellation.
//
// * Order: earliest deadline first; among equal deadlines, the one scheduled
//   first (the sequence number). asyncio orders equal deadlines by heap
//   accident; duet promises FIFO.
// * Cancellation is lazy, as in asyncio: TimerHandle::cancel() only marks
//   the node and bumps cancelled_count(); cancelled entries are dropped when
//   they reach the top, and the whole heap is rebuilt without them when more
//   than half of more than 100 entries are cancelled (asyncio's
//   _MIN_SCHEDULED_TIMER_HANDLES and _MIN_CANCELLED_TIMER_HANDLES_FRACTION),
//   so a cancel-heavy workload keeps memory bounded by about twice the live
//   timers.
// * Entries carry the deadline by value so heap comparisons never touch the
//   nodes (one cache line holds over two entries).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "duet/time.hpp"

namespace duet::detail {

struct HandleNode;

class TimerQueue {
 public:
  struct Entry {
    TimePoint when;
    std::uint64_t seq;
    HandleNode* node;
  };

  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  std::size_t cancelled_count() const noexcept { return cancelled_; }

  /// Adds a node (the queue takes over one reference) due at `when`.
  void push(TimePoint when, HandleNode* node);

  /// The earliest live entry after dropping cancelled ones from the top and,
  /// when worthwhile, compacting; nullptr when there is none.
  const Entry* top();

  /// Removes and returns the top node (its reference passes to the caller).
  HandleNode* pop();

  /// Whether `node` is the entry at the top (cancelled or not).
  bool is_head(const HandleNode* node) const noexcept { return !heap_.empty() && heap_.front().node == node; }

  /// Called when a node in this queue is cancelled.
  void note_cancelled() noexcept { ++cancelled_; }

  /// Releases every node (the loop is closing).
  void clear() noexcept;

  /// Drops every cancelled entry and rebuilds the heap (asyncio's rule).
  void compact();

 private:
  std::vector<Entry> heap_;
  std::size_t cancelled_ = 0;
  std::uint64_t next_seq_ = 0;
};

}  // namespace duet::detail
