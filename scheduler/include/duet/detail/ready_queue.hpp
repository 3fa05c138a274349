// duet/detail/ready_queue.hpp — the loop's ready queue: FIFO callbacks
// stored inline in a chain of 16 KiB blocks.
//
// Why not a ring of pointers to heap nodes: with a million callbacks in
// flight, every call_soon and every run touched a separate 80-byte node
// (plus the ring slot) — cache misses and pool traffic that made up most of
// a callback's cost. Here a callback is written where the queue's tail is:
// a 16-byte header and the callable's own bytes (a lambda capturing one
// reference is 24 bytes in all), written and read front to back, so a long
// queue streams through memory the way the prefetcher likes.
//
// Layout and invariants:
//  * Entries are appended at tail_->used and consumed from (head_,
//    head_offset_); count_ is the number of entries not yet consumed.
//  * A block holds one reference for the queue while the queue may still
//    read or write it, and one per Handle that points into it. Entries are
//    never moved or overwritten while a Handle can see them: a block is
//    reused in place only when the queue is empty and holds the only
//    reference; otherwise it is let go, and recycled when its last Handle
//    goes.
//  * An entry is pending, running, done or cancelled. Its callable is alive
//    exactly while it is pending or running (a cancel of a pending entry
//    destroys it at once, as asyncio drops the callback).
//  * Timer callbacks and thread-safe posts arrive as "node entries": ops is
//    nullptr and the storage holds a HandleNode* the queue owns a
//    reference to.
//  * Contexts travel as "marker entries" (ops == &kContextMarkerOps; the
//    storage holds a ContextMapNode* the queue owns a reference to): a
//    callable runs in the context of the last marker before it. A marker
//    is written only when call_soon's context differs from the previous
//    one's, so a batch scheduled from one context costs one marker, not one
//    reference count per callback (an atomic increment and decrement cost
//    about 15 ns here, more than call_soon itself). Markers are not counted
//    in count_; front() consumes them on its way to the next callable.
//  * write_context_ is the context in effect at the tail; it is kept alive
//    by the last marker, or by read_context_ once that marker is consumed,
//    so comparing it by address is safe. read_context_ is the context of
//    the last marker consumed (owned).
//  * The reader context (the loop's callback context) follows
//    read_context_: while it is borrowed, its map is read_context_. So the
//    loop checks one flag per callback, not two pointers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "duet/detail/assert.hpp"
#include "duet/detail/callback.hpp"
#include "duet/detail/context_map.hpp"

namespace duet::detail {

struct HandleNode;
struct ContextState;

enum class EntryState : std::uint8_t { pending, running, done, cancelled };

// 8-byte aligned on every target (wasm32 pointers are 4 bytes), so that the
// callable that follows the header is 8-byte aligned too.
struct alignas(8) ReadyEntry {
  const CallableOps* ops;  // nullptr: a node entry
  std::uint32_t size;      // bytes, header included; a multiple of kEntryAlign
  EntryState state;

  static constexpr std::size_t kEntryAlign = 8;
  void* storage() noexcept { return reinterpret_cast<unsigned char*>(this) + sizeof(ReadyEntry); }
  HandleNode* node() noexcept { return *static_cast<HandleNode**>(storage()); }
};
static_assert(sizeof(ReadyEntry) == 16 && alignof(ReadyEntry) == ReadyEntry::kEntryAlign);

struct ReadyBlock {
  static constexpr std::size_t kBytes = 16384;
  std::uint32_t refs = 0;
  std::uint32_t used = 0;
  ReadyBlock* next = nullptr;
  static constexpr std::size_t kCapacity = kBytes - 16;
  alignas(ReadyEntry::kEntryAlign) unsigned char data[kCapacity];
};

/// The ops of a marker entry (never called; compared by address).
inline constexpr CallableOps kContextMarkerOps{nullptr, nullptr, &type_of<ContextMapNode>};

constexpr std::size_t round_up_to_entry(std::size_t n) {
  return (n + ReadyEntry::kEntryAlign - 1) & ~(ReadyEntry::kEntryAlign - 1);
}

/// Takes an empty block from this thread's cache, or the heap.
ReadyBlock* acquire_block();
/// Returns a block nobody references any more to the cache (or the heap).
void recycle_block(ReadyBlock* block) noexcept;

inline void release_block(ReadyBlock* block) noexcept {
  DUET_ASSERT(block->refs > 0);
  if (--block->refs == 0) recycle_block(block);
}

class ReadyQueue {
 public:
  /// Callables larger than this are boxed on the heap instead.
  static constexpr std::size_t kMaxInline = 1024;

  ReadyQueue() = default;
  ReadyQueue(const ReadyQueue&) = delete;
  ReadyQueue& operator=(const ReadyQueue&) = delete;
  ~ReadyQueue() { clear(); }

  bool empty() const noexcept { return count_ == 0; }
  std::size_t size() const noexcept { return count_; }

  /// Appends a callable; returns its entry and the block it lives in.
  template <class F>
  std::pair<ReadyBlock*, ReadyEntry*> emplace(F&& fn) {
    constexpr std::size_t payload = stored_size<F>(kMaxInline, ReadyEntry::kEntryAlign);
    constexpr std::size_t bytes = round_up_to_entry(sizeof(ReadyEntry) + payload);
    ReadyBlock* const old_tail = tail_;
    ReadyEntry* entry = allocate(bytes);
    try {
      entry->ops = construct_callable(entry->storage(), kMaxInline, ReadyEntry::kEntryAlign, std::forward<F>(fn));
    } catch (...) {
      undo_allocate(old_tail, bytes);
      throw;
    }
    entry->size = static_cast<std::uint32_t>(bytes);
    entry->state = EntryState::pending;
    ++count_;
    return {tail_, entry};
  }

  /// Appends a callable to run in `context` (borrowed; nullptr: empty).
  template <class F>
  std::pair<ReadyBlock*, ReadyEntry*> emplace_in(ContextMapNode* context, F&& fn) {
    if (context != write_context_) [[unlikely]]
      return emplace_after_marker(context, std::forward<F>(fn));
    return emplace(std::forward<F>(fn));
  }

  /// The context of the callable front() returned last (borrowed).
  ContextMapNode* read_context() const noexcept { return read_context_; }
  /// The context object that follows read_context() while it is borrowed.
  void set_reader_context(ContextState* reader) noexcept { reader_ = reader; }

  /// Appends a node entry; the queue takes over one reference to `node`.
  void push_node(HandleNode* node) {
    constexpr std::size_t bytes = round_up_to_entry(sizeof(ReadyEntry) + sizeof(HandleNode*));
    ReadyEntry* entry = allocate(bytes);
    entry->ops = nullptr;
    entry->size = static_cast<std::uint32_t>(bytes);
    entry->state = EntryState::pending;
    ::new (entry->storage()) HandleNode*(node);
    ++count_;
  }

  /// The oldest callable or node entry (markers before it are consumed);
  /// the queue must not be empty.
  ReadyEntry* front() noexcept {
    DUET_ASSERT(count_ > 0);
    for (;;) {
      if (head_offset_ == head_->used) [[unlikely]]
        advance_block();
      auto* entry = reinterpret_cast<ReadyEntry*>(head_->data + head_offset_);
      if (entry->ops != &kContextMarkerOps) [[likely]]
        return entry;
      take_marker(entry);
    }
  }

  /// Consumes the front entry (whose callable the caller has destroyed or
  /// whose node it has taken).
  void pop() noexcept {
    ReadyEntry* entry = reinterpret_cast<ReadyEntry*>(head_->data + head_offset_);
    head_offset_ += entry->size;
    if (--count_ == 0) rewind();
  }

  /// Drops every entry without running it (the loop is closing).
  void clear() noexcept;

 private:
  ReadyEntry* allocate(std::size_t bytes) {
    if (!tail_ || tail_->used + bytes > ReadyBlock::kCapacity) [[unlikely]]
      add_block();
    auto* entry = reinterpret_cast<ReadyEntry*>(tail_->data + tail_->used);
    tail_->used += static_cast<std::uint32_t>(bytes);
    return entry;
  }

  template <class F>
  std::pair<ReadyBlock*, ReadyEntry*> emplace_after_marker(ContextMapNode* context, F&& fn) {
    constexpr std::size_t marker = round_up_to_entry(sizeof(ReadyEntry) + sizeof(ContextMapNode*));
    constexpr std::size_t payload = stored_size<F>(kMaxInline, ReadyEntry::kEntryAlign);
    constexpr std::size_t bytes = round_up_to_entry(sizeof(ReadyEntry) + payload);
    ReadyBlock* const old_tail = tail_;
    ReadyEntry* head = allocate(marker + bytes);  // marker and callable share a block
    auto* entry = reinterpret_cast<ReadyEntry*>(reinterpret_cast<unsigned char*>(head) + marker);
    try {
      entry->ops = construct_callable(entry->storage(), kMaxInline, ReadyEntry::kEntryAlign, std::forward<F>(fn));
    } catch (...) {
      undo_allocate(old_tail, marker + bytes);
      throw;
    }
    head->ops = &kContextMarkerOps;
    head->size = static_cast<std::uint32_t>(marker);
    head->state = EntryState::pending;
    ::new (head->storage()) ContextMapNode*(retain(context));
    write_context_ = context;
    entry->size = static_cast<std::uint32_t>(bytes);
    entry->state = EntryState::pending;
    ++count_;
    return {tail_, entry};
  }

  void take_marker(ReadyEntry* marker) noexcept;
  void set_read_context(ContextMapNode* context) noexcept;

  void add_block();
  /// Takes back the last allocate(): its bytes, and the block it added.
  void undo_allocate(ReadyBlock* old_tail, std::size_t bytes) noexcept;
  void advance_block() noexcept;
  void rewind() noexcept;

  ReadyBlock* head_ = nullptr;
  std::uint32_t head_offset_ = 0;
  ReadyBlock* tail_ = nullptr;
  std::size_t count_ = 0;
  ContextMapNode* write_context_ = nullptr;  // borrowed (see the invariants above)
  ContextMapNode* read_context_ = nullptr;   // owned
  ContextState* reader_ = nullptr;
};

}  // namespace duet::detail
