// The slow paths of the frame allocator. See frame_allocator.hpp.
#include "duet/detail/frame_allocator.hpp"

#include <new>

namespace duet::detail {
namespace {

// Frees this thread's cached blocks when the thread exits; armed by the
// first block cached on the thread.
struct Reaper {
  void arm() noexcept {}
  ~Reaper() {
    t_frame_cache.thread_exiting = true;
    for (std::size_t c = 0; c < FrameCache::kClasses; ++c) {
      while (FrameCache::FreeBlock* b = t_frame_cache.heads[c]) {
        t_frame_cache.heads[c] = b->next;
        ::operator delete(b);
      }
      t_frame_cache.counts[c] = 0;
    }
  }
};
thread_local Reaper t_reaper;

}  // namespace

void* frame_allocate_slow(std::size_t size) {
  const std::size_t c = FrameCache::class_of(size ? size : 1);
  if (c >= FrameCache::kClasses) return ::operator new(size);
  return ::operator new((c + 1) * FrameCache::kGranule);  // the class's full size, so it can be reused
}

void frame_deallocate_slow(void* p, std::size_t size) noexcept {
  if (!p) return;
  const std::size_t c = FrameCache::class_of(size ? size : 1);
  if (DUET_POOLS_DISABLED || c >= FrameCache::kClasses || t_frame_cache.thread_exiting ||
      t_frame_cache.counts[c] >= FrameCache::kMaxPerClass) {
    ::operator delete(p);
    return;
  }
  // First block cached on this thread: arm the reaper, then cache it.
  t_reaper.arm();
  t_frame_cache.reaper_armed = true;
  auto* b = static_cast<FrameCache::FreeBlock*>(p);
  b->next = t_frame_cache.heads[c];
  t_frame_cache.heads[c] = b;
  ++t_frame_cache.counts[c];
}

std::size_t cached_frame_count() noexcept {
  std::size_t n = 0;
  for (std::size_t c = 0; c < FrameCache::kClasses; ++c) n += t_frame_cache.counts[c];
  return n;
}

}  // namespace duet::detail
