// duet/detail/frame_allocator.hpp — recycling allocation for coroutine
// frames, future and task states.
//
// A task costs one coroutine frame plus its state; both come from per-thread
// free lists in 64-byte size classes up to 2 KiB (larger requests go to the
// heap), so a program that keeps spawning tasks of the same shapes
// allocates nothing in steady state. Per-thread for the same reason as the
// handle pool: a block may be freed after its loop is gone, on any thread
// that owns it at that moment; it then joins that thread's list.
#pragma once

#include <cstddef>

namespace duet::detail {

void* frame_allocate(std::size_t size);
void frame_deallocate(void* p, std::size_t size) noexcept;

/// Blocks cached on this thread (all size classes); for tests.
std::size_t cached_frame_count() noexcept;

/// Base for classes whose objects come from the frame allocator.
struct FramePooled {
  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }
};

}  // namespace duet::detail
