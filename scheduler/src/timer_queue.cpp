// The timer heap. See duet/detail/timer_queue.hpp for the rules.
#include "duet/detail/timer_queue.hpp"

#include <algorithm>

#include "duet/detail/handle_node.hpp"

namespace duet::detail {
namespace {

// std::*_heap build a max-heap; "greater" puts the earliest deadline (then
// the lowest sequence number) on top.
struct Later {
  bool operator()(const TimerQueue::Entry& a, const TimerQueue::Entry& b) const noexcept {
    if (a.when != b.when) return a.when > b.when;
    return a.seq > b.seq;
  }
};

// asyncio's base_events.py constants: below this many timers a rebuild is
// not worth it; above it, rebuild when more than this fraction is cancelled.
constexpr std::size_t kMinScheduledForCompaction = 100;

}  // namespace

void TimerQueue::push(TimePoint when, HandleNode* node) {
  DUET_ASSERT(node->is_timer && !node->in_heap);
  heap_.push_back(Entry{when, next_seq_++, node});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
  node->in_heap = true;
}

const TimerQueue::Entry* TimerQueue::top() {
  if (heap_.size() > kMinScheduledForCompaction && cancelled_ * 2 > heap_.size()) compact();
  while (!heap_.empty() && heap_.front().node->cancelled) release_node(pop());
  return heap_.empty() ? nullptr : &heap_.front();
}

HandleNode* TimerQueue::pop() {
  DUET_ASSERT(!heap_.empty());
  std::pop_heap(heap_.begin(), heap_.end(), Later{});
  HandleNode* node = heap_.back().node;
  heap_.pop_back();
  node->in_heap = false;
  if (node->cancelled) --cancelled_;
  return node;
}

void TimerQueue::compact() {
  auto live_end = std::partition(heap_.begin(), heap_.end(), [](const Entry& e) { return !e.node->cancelled; });
  for (auto it = live_end; it != heap_.end(); ++it) {
    it->node->in_heap = false;
    release_node(it->node);
  }
  heap_.erase(live_end, heap_.end());
  std::make_heap(heap_.begin(), heap_.end(), Later{});
  cancelled_ = 0;
}

void TimerQueue::clear() noexcept {
  // Detach everything first: releasing a node may destroy a callback whose
  // destructor cancels another handle of this queue.
  std::vector<Entry> entries;
  entries.swap(heap_);
  cancelled_ = 0;
  for (Entry& e : entries) e.node->in_heap = false;
  for (Entry& e : entries) {
    e.node->callback.reset();  // free captures now, even if a TimerHandle lives on
    release_node(e.node);
  }
}

}  // namespace duet::detail
