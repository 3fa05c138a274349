// duet/detail/frame_allocator.hpp — recycling allocation for coroutine
// frames, future and task states.
//
// A task costs one coroutine frame plus its state; both come from per-thread
// free lists in 64-byte size classes up to 2 KiB (larger requests go to the
// heap), so a program that keeps spawning tasks of the same shapes
// allocates nothing in steady state. Per-thread for the same reason as the
// handle pool: a block may be freed after its loop is gone, on any thread
// that owns it at that moment; it then joins that thread's list. The fast
// paths are inline (they are on every task spawn and every future); the
// cache is a trivially destructible thread_local, so reaching it needs no
// initialisation guard.
#pragma once

#include <cstddef>

#include "duet/detail/assert.hpp"

namespace duet::detail {

struct FrameCache {
  static constexpr std::size_t kGranule = 64;
  static constexpr std::size_t kClasses = 32;  // up to 2 KiB
  static constexpr std::size_t kMaxPerClass = 4096;
  struct FreeBlock {
    FreeBlock* next;
  };
  FreeBlock* heads[kClasses] = {};
  std::size_t counts[kClasses] = {};
  bool reaper_armed = false;
  bool thread_exiting = false;

  static constexpr std::size_t class_of(std::size_t size) { return (size + kGranule - 1) / kGranule - 1; }
};

inline thread_local constinit FrameCache t_frame_cache{};

void* frame_allocate_slow(std::size_t size);
void frame_deallocate_slow(void* p, std::size_t size) noexcept;

inline void* frame_allocate(std::size_t size) {
  const std::size_t c = FrameCache::class_of(size ? size : 1);
  if (c < FrameCache::kClasses) {
    if (FrameCache::FreeBlock* b = t_frame_cache.heads[c]) [[likely]] {
      t_frame_cache.heads[c] = b->next;
      --t_frame_cache.counts[c];
      return b;
    }
  }
  return frame_allocate_slow(size);
}

inline void frame_deallocate(void* p, std::size_t size) noexcept {
  const std::size_t c = FrameCache::class_of(size ? size : 1);
  if (!DUET_POOLS_DISABLED && p && c < FrameCache::kClasses && t_frame_cache.reaper_armed &&
      !t_frame_cache.thread_exiting && t_frame_cache.counts[c] < FrameCache::kMaxPerClass) [[likely]] {
    auto* b = static_cast<FrameCache::FreeBlock*>(p);
    b->next = t_frame_cache.heads[c];
    t_frame_cache.heads[c] = b;
    ++t_frame_cache.counts[c];
    return;
  }
  frame_deallocate_slow(p, size);
}

/// Blocks cached on this thread (all size classes); for tests.
std::size_t cached_frame_count() noexcept;

/// Base for classes whose objects come from the frame allocator.
struct FramePooled {
  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }
};

}  // namespace duet::detail
