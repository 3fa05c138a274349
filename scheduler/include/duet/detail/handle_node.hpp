// duet/detail/handle_node.hpp — the object behind a TimerHandle (and a
// thread-safe post), and its pool.
//
// A HandleNode is one callback that cannot live inline in the ready queue:
// a timer (the heap needs a stable address to cancel through) or a
// call_soon_threadsafe post (built on another thread). When it falls due it
// enters the ready queue as a node entry.
//
// Ownership: an intrusive, non-atomic reference count. The queue that holds
// a node owns one reference; each user Handle owns one. Nodes are touched by
// one thread at a time: the loop's thread, or (for call_soon_threadsafe) the
// posting thread until the node is in the inbox, after which only the loop
// thread sees it and the poster keeps no reference.
//
// Memory: nodes are recycled through a per-thread free list, so that in
// steady state call_soon allocates nothing. Per-thread (not per-loop)
// because a user may keep a Handle after its loop is gone; releasing it then
// must not reach into freed loop memory. A node freed on another thread
// simply joins that thread's list.
//
// Invariants (checked by DUET_ASSERT in debug builds):
//  * in_heap implies loop != nullptr and the node is a timer;
//  * a node on a free list has refs == 0 and an empty callback.
#pragma once

#include <cstdint>

#include "duet/detail/assert.hpp"
#include "duet/detail/callback.hpp"
#include "duet/detail/context_map.hpp"
#include "duet/time.hpp"

namespace duet {
class Loop;
}

namespace duet::detail {

struct HandleNode {
  std::uint32_t refs = 0;
  bool cancelled = false;
  bool running = false;   // its callback is executing right now
  bool is_timer = false;
  bool in_heap = false;   // counted by the loop's timer queue
  Loop* loop = nullptr;   // the loop that scheduled it (valid while in_heap)
  HandleNode* next = nullptr;  // free list / inbox link
  std::uint32_t generation = 0;  // bumped at each reuse: stale ids never match
  TimePoint when{};       // timers only
  ContextMapNode* context = nullptr;  // owned: the context the callback runs in
  Callback callback;
};

/// Takes a node from this thread's free list (or the heap) with refs == 1.
HandleNode* acquire_node();

/// Drops one reference; the last one recycles the node.
inline void release_node(HandleNode* node) noexcept;

void recycle_node(HandleNode* node) noexcept;

inline void release_node(HandleNode* node) noexcept {
  DUET_ASSERT(node->refs > 0);
  if (--node->refs == 0) recycle_node(node);
}

inline void release_node_ref(HandleNode* node) noexcept { release_node(node); }

/// Nodes cached on this thread's free list; for tests and statistics.
std::size_t pooled_node_count() noexcept;
/// Up to `max` idle nodes of this thread's cache, as a list through `next`.
HandleNode* take_pooled_nodes(std::size_t max, std::size_t& count) noexcept;
/// Idle nodes (a list through `next`) into this thread's cache.
void give_pooled_nodes(HandleNode* list) noexcept;

}  // namespace duet::detail
