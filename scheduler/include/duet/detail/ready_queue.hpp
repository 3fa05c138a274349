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
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "duet/detail/assert.hpp"
#include "duet/detail/callback.hpp"

namespace duet::detail {

struct HandleNode;

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

  /// The oldest entry; the queue must not be empty.
  ReadyEntry* front() noexcept {
    DUET_ASSERT(count_ > 0);
    if (head_offset_ == head_->used) [[unlikely]]
      advance_block();
    return reinterpret_cast<ReadyEntry*>(head_->data + head_offset_);
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

  void add_block();
  /// Takes back the last allocate(): its bytes, and the block it added.
  void undo_allocate(ReadyBlock* old_tail, std::size_t bytes) noexcept;
  void advance_block() noexcept;
  void rewind() noexcept;

  ReadyBlock* head_ = nullptr;
  std::uint32_t head_offset_ = 0;
  ReadyBlock* tail_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace duet::detail
