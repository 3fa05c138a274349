// Handle, TimerHandle and the per-thread node pool.
#include "duet/handle.hpp"

#include <cstddef>

#include "duet/loop.hpp"

namespace duet::detail {
namespace {

// More than this many idle nodes on one thread go back to the heap: enough
// for bursts of tens of thousands of callbacks, bounded for threads that
// once held a million timers.
constexpr std::size_t kMaxPooledNodes = std::size_t{1} << 16;

// The free list is a trivially destructible thread_local, so reaching it is
// a plain TLS access with no initialisation guard on the hot path. The
// Reaper (non-trivial, so guarded) frees the list at thread exit; it is
// touched once per thread, the first time a node is recycled there.
struct FreeList {
  HandleNode* head = nullptr;
  std::size_t count = 0;
  bool reaper_armed = false;
  bool thread_exiting = false;  // after the Reaper ran: free, don't pool
};
thread_local constinit FreeList t_free{};

struct Reaper {
  void arm() noexcept {}
  ~Reaper() {
    t_free.thread_exiting = true;
    while (HandleNode* node = t_free.head) {
      t_free.head = node->next;
      delete node;
    }
    t_free.count = 0;
  }
};
thread_local Reaper t_reaper;

}  // namespace

HandleNode* acquire_node() {
  HandleNode* node = t_free.head;
  if (node) {
    t_free.head = node->next;
    --t_free.count;
  } else {
    node = new HandleNode;
  }
  node->refs = 1;
  node->cancelled = false;
  node->running = false;
  node->is_timer = false;
  node->in_heap = false;
  node->loop = nullptr;
  node->next = nullptr;
  return node;
}

void recycle_node(HandleNode* node) noexcept {
  DUET_ASSERT(!node->in_heap);
  node->callback.reset();  // may release other nodes; that is fine
  if (t_free.thread_exiting || t_free.count >= kMaxPooledNodes) [[unlikely]] {
    delete node;
    return;
  }
  if (!t_free.reaper_armed) [[unlikely]] {
    t_reaper.arm();
    t_free.reaper_armed = true;
  }
  node->next = t_free.head;
  t_free.head = node;
  ++t_free.count;
}

std::size_t pooled_node_count() noexcept { return t_free.count; }

}  // namespace duet::detail

namespace duet {

void Handle::cancel() noexcept {
  if (!node_ || node_->cancelled) return;
  node_->cancelled = true;
  if (node_->in_heap) node_->loop->timer_cancelled();
  // Release what the callback captured now, as asyncio drops _callback and
  // _args on cancel; but not under a callback that is still executing.
  if (!node_->running) node_->callback.reset();
}

std::string Handle::describe() const { return detail::describe_node(node_); }

std::string detail::describe_node(const HandleNode* node) {
  if (!node) return "<Handle empty>";
  // Built with append() only: GCC 12 -O3 reports a false -Wrestrict on
  // chains of std::string operator+ (GCC PR 105329).
  std::string out(node->is_timer ? "<TimerHandle" : "<Handle");
  if (node->is_timer) {
    out.append(" when=");
    out.append(std::to_string(node->when.time_since_epoch().count()));
    out.append("ns");
  }
  if (!node->callback.empty()) {
    out.append(" ");
    out.append(type_name(node->callback.target_type()));
  }
  if (node->cancelled) out.append(" cancelled");
  out.append(">");
  return out;
}

}  // namespace duet
