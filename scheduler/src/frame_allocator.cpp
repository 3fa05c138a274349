// Size-class free lists for frames and states. See frame_allocator.hpp.
#include "duet/detail/frame_allocator.hpp"

#include <new>

#include "duet/detail/assert.hpp"

namespace duet::detail {
namespace {

constexpr std::size_t kGranule = 64;
constexpr std::size_t kClasses = 32;  // up to 2 KiB
constexpr std::size_t kMaxCachedPerClass = 4096;

struct FreeBlock {
  FreeBlock* next;
};

struct Cache {
  FreeBlock* heads[kClasses] = {};
  std::size_t counts[kClasses] = {};
  bool reaper_armed = false;
  bool thread_exiting = false;
};
thread_local constinit Cache t_cache{};

struct Reaper {
  void arm() noexcept {}
  ~Reaper() {
    t_cache.thread_exiting = true;
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (FreeBlock* b = t_cache.heads[c]) {
        t_cache.heads[c] = b->next;
        ::operator delete(b);
      }
      t_cache.counts[c] = 0;
    }
  }
};
thread_local Reaper t_reaper;

constexpr std::size_t class_of(std::size_t size) { return (size + kGranule - 1) / kGranule - 1; }

}  // namespace

void* frame_allocate(std::size_t size) {
  const std::size_t c = class_of(size ? size : 1);
  if (c >= kClasses) return ::operator new(size);
  if (FreeBlock* b = t_cache.heads[c]) {
    t_cache.heads[c] = b->next;
    --t_cache.counts[c];
    return b;
  }
  return ::operator new((c + 1) * kGranule);
}

void frame_deallocate(void* p, std::size_t size) noexcept {
  if (!p) return;
  const std::size_t c = class_of(size ? size : 1);
  if (DUET_POOLS_DISABLED || c >= kClasses || t_cache.thread_exiting || t_cache.counts[c] >= kMaxCachedPerClass) {
    ::operator delete(p);
    return;
  }
  if (!t_cache.reaper_armed) {
    t_reaper.arm();
    t_cache.reaper_armed = true;
  }
  auto* b = static_cast<FreeBlock*>(p);
  b->next = t_cache.heads[c];
  t_cache.heads[c] = b;
  ++t_cache.counts[c];
}

std::size_t cached_frame_count() noexcept {
  std::size_t n = 0;
  for (std::size_t c = 0; c < kClasses; ++c) n += t_cache.counts[c];
  return n;
}

}  // namespace duet::detail
