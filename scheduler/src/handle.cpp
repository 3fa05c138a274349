// Handle, TimerHandle, and the per-thread caches of nodes and ready blocks.
#include "duet/handle.hpp"

#include <cstddef>
#include <utility>

#include "duet/loop.hpp"

namespace duet::detail {
namespace {

// More than this many idle nodes on one thread go back to the heap: enough
// for bursts of tens of thousands of callbacks, bounded for threads that
// once held a million timers.
constexpr std::size_t kMaxPooledNodes = std::size_t{1} << 18;

// A per-thread cache of idle objects linked through their `next` field.
// The list head is a trivially destructible thread_local, so reaching it is
// a plain TLS access with no initialisation guard on the hot path. The
// Reaper (non-trivial, so guarded) frees the list at thread exit; it is
// touched once per thread, the first time an object is cached there.
template <class T, std::size_t kMax>
class ThreadCache {
 public:
  /// An idle object, or nullptr.
  static T* take() noexcept {
    T* item = state_.head;
    if (item) {
      state_.head = item->next;
      --state_.count;
    }
    return item;
  }

  /// Caches `item`, or deletes it when the cache is full, disabled (ASan)
  /// or its thread is exiting.
  static void give(T* item) noexcept {
    if (DUET_POOLS_DISABLED || state_.thread_exiting || state_.count >= kMax) [[unlikely]] {
      delete item;
      return;
    }
    if (!state_.reaper_armed) [[unlikely]] {
      reaper_.arm();
      state_.reaper_armed = true;
    }
    item->next = state_.head;
    state_.head = item;
    ++state_.count;
  }

  static std::size_t size() noexcept { return state_.count; }

  /// Detaches up to `max` idle objects as a list linked through `next`
  /// (nullptr-terminated); `count` receives how many.
  static T* take_list(std::size_t max, std::size_t& count) noexcept {
    T* head = state_.head;
    T* last = nullptr;
    count = 0;
    for (T* item = head; item && count < max; item = item->next) {
      last = item;
      ++count;
    }
    if (!last) return nullptr;
    state_.head = last->next;
    state_.count -= count;
    last->next = nullptr;
    return head;
  }

 private:
  struct State {
    T* head = nullptr;
    std::size_t count = 0;
    bool reaper_armed = false;
    bool thread_exiting = false;  // after the Reaper ran: free, don't cache
  };
  struct Reaper {
    void arm() noexcept {}
    ~Reaper() {
      state_.thread_exiting = true;
      while (T* item = state_.head) {
        state_.head = item->next;
        delete item;
      }
      state_.count = 0;
    }
  };
  static inline thread_local constinit State state_{};
  static inline thread_local Reaper reaper_;
};

using NodeCache = ThreadCache<HandleNode, kMaxPooledNodes>;

}  // namespace

HandleNode* acquire_node() {
  HandleNode* node = NodeCache::take();
  if (!node) node = new HandleNode;
  node->refs = 1;
  ++node->generation;
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
  release(std::exchange(node->context, nullptr));
  NodeCache::give(node);
}

std::size_t pooled_node_count() noexcept { return NodeCache::size(); }

HandleNode* take_pooled_nodes(std::size_t max, std::size_t& count) noexcept { return NodeCache::take_list(max, count); }

void give_pooled_nodes(HandleNode* list) noexcept {
  while (list) {
    HandleNode* next = list->next;
    NodeCache::give(list);
    list = next;
  }
}

}  // namespace duet::detail

namespace duet::detail {
namespace {

// Ready-queue blocks cached per thread: up to 64 MiB, enough for a burst of
// about 2.7 million queued callbacks to be followed by another without a
// single allocation. Like nodes, blocks are cached per thread because a
// Handle may release the last reference after its loop is gone.
constexpr std::size_t kMaxCachedBlocks = (std::size_t{64} << 20) / ReadyBlock::kBytes;

using BlockCache = ThreadCache<ReadyBlock, kMaxCachedBlocks>;

}  // namespace

ReadyBlock* acquire_block() {
  if (ReadyBlock* block = BlockCache::take()) return block;
  return new ReadyBlock;
}

void recycle_block(ReadyBlock* block) noexcept { BlockCache::give(block); }

std::string describe_node(const HandleNode* node) {
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

std::string describe_entry(ReadyEntry* entry) {
  if (!entry->ops) return describe_node(entry->node());
  std::string out("<Handle ");
  out.append(type_name(entry->ops->type()));
  if (entry->state == EntryState::cancelled) out.append(" cancelled");
  out.append(">");
  return out;
}

}  // namespace duet::detail

namespace duet {

void Handle::cancel() noexcept {
  if (!owner_) return;
  if (entry_) {
    const detail::EntryState was = entry_->state;
    // The state changes before the destroy: a captured object's destructor
    // may cancel this same handle again and must find nothing to destroy.
    entry_->state = detail::EntryState::cancelled;
    // Release what the callback captured now, as asyncio drops _callback
    // and _args on cancel; a running callback is destroyed once it returns.
    if (was == detail::EntryState::pending && entry_->ops->destroy) entry_->ops->destroy(entry_->storage());
    return;
  }
  detail::HandleNode* n = node();
  if (n->cancelled) return;
  n->cancelled = true;
  if (n->in_heap) n->loop->timer_cancelled(n);
  if (!n->running) n->callback.reset();
}

bool Handle::cancelled() const noexcept {
  if (!owner_) return false;
  if (entry_) return entry_->state == detail::EntryState::cancelled;
  return node()->cancelled;
}

std::string Handle::describe() const {
  if (entry_) return detail::describe_entry(entry_);
  return detail::describe_node(node());
}

}  // namespace duet
