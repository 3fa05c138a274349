// Fibers natively: Boost.Context's fiber on a pooled, guard-paged stack.
//
// Stacks come from protected_fixedsize_stack (mmap with a PROT_NONE guard
// page below the stack, so an overflow faults) and go back to a per-thread
// pool of up to kPooledStacks per size; the rest are unmapped, so memory
// returns to its baseline after a burst of fibers. Under AddressSanitizer
// every switch is announced with __sanitizer_start/finish_switch_fiber, so
// that ASan tracks which stack is live (without it, a reused stack keeps
// stale poison and ASan reports errors that are not there).
#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include <cstddef>
#include <new>
#include <utility>
#include <vector>

#include "duet/detail/fiber_context.hpp"

// g++ says __SANITIZE_ADDRESS__; clang says __has_feature(address_sanitizer).
#if defined(__SANITIZE_ADDRESS__)
#define DUET_ASAN_FIBERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DUET_ASAN_FIBERS 1
#endif
#endif
#if !defined(DUET_ASAN_FIBERS)
#define DUET_ASAN_FIBERS 0
#endif
#if DUET_ASAN_FIBERS
#include <sanitizer/common_interface_defs.h>
#endif

namespace duet::detail {
namespace ctx = boost::context;
namespace {

constexpr std::size_t kPooledStacks = 256;

struct StackPool {
  struct Bucket {
    std::size_t size;
    std::vector<ctx::stack_context> free;
  };
  std::vector<Bucket> buckets;
  bool exiting = false;

  Bucket& bucket(std::size_t size) {
    for (Bucket& b : buckets)
      if (b.size == size) return b;
    buckets.push_back(Bucket{size, {}});
    return buckets.back();
  }
  ~StackPool() {
    exiting = true;
    for (Bucket& b : buckets)
      for (ctx::stack_context& s : b.free) ctx::protected_fixedsize_stack(b.size).deallocate(s);
  }
};

thread_local StackPool t_pool;

// A stack allocator for ctx::fiber: reuse, else protected_fixedsize_stack.
// It records the stack it hands out (ASan needs the bounds).
class PooledStack {
 public:
  PooledStack(std::size_t size, ctx::stack_context* record) : size_(size), record_(record) {}
  ctx::stack_context allocate() {
    StackPool::Bucket& b = t_pool.bucket(size_);
    ctx::stack_context s;
    if (!b.free.empty()) {
      s = b.free.back();
      b.free.pop_back();
    } else {
      s = ctx::protected_fixedsize_stack(size_).allocate();
    }
    *record_ = s;
    return s;
  }
  void deallocate(ctx::stack_context& s) noexcept {
    if (!t_pool.exiting) {
      StackPool::Bucket& b = t_pool.bucket(size_);
      if (b.free.size() < kPooledStacks) {
        try {
          b.free.push_back(s);
          return;
        } catch (...) {
          // no room to remember it: unmap it below
        }
      }
    }
    ctx::protected_fixedsize_stack(size_).deallocate(s);
  }

 private:
  std::size_t size_;
  ctx::stack_context* record_;
};

}  // namespace

struct FiberContext {
  ctx::fiber suspended;  // the fiber while it does not run
  ctx::fiber caller;     // while it runs: where fiber_switch_out goes
  void (*entry)(void*);
  void* arg;
  ctx::stack_context stack{};
#if DUET_ASAN_FIBERS
  void* fake_stack = nullptr;         // ASan's, for the side being left
  const void* outer_bottom = nullptr;  // the stack fiber_switch_in ran on
  std::size_t outer_size = 0;
#endif
};

namespace {

#if DUET_ASAN_FIBERS
// ASan: about to leave for `to` (bottom, size); `save` keeps the leaving
// side's fake stack (nullptr: the leaving fiber is done for good).
void leaving(void** save, const void* bottom, std::size_t size) { __sanitizer_start_switch_fiber(save, bottom, size); }
// ASan: arrived; learns the bounds of the stack we came from.
void arrived(void* fake_stack, const void** from_bottom, std::size_t* from_size) {
  __sanitizer_finish_switch_fiber(fake_stack, from_bottom, from_size);
}
#endif

#if DUET_ASAN_FIBERS
const void* stack_bottom(const ctx::stack_context& s) { return static_cast<const char*>(s.sp) - s.size; }
#endif

}  // namespace

FiberContext* fiber_create(std::size_t stack_size, void (*entry)(void*), void* arg) {
  auto* fiber = new FiberContext{{}, {}, entry, arg};
  try {
    fiber->suspended =
        ctx::fiber(std::allocator_arg, PooledStack(stack_size, &fiber->stack), [fiber](ctx::fiber&& caller) {
#if DUET_ASAN_FIBERS
          arrived(nullptr, &fiber->outer_bottom, &fiber->outer_size);
#endif
          fiber->caller = std::move(caller);
          fiber->entry(fiber->arg);  // catches everything
#if DUET_ASAN_FIBERS
          leaving(nullptr, fiber->outer_bottom, fiber->outer_size);
#endif
          return std::move(fiber->caller);
        });
  } catch (...) {
    delete fiber;
    throw;
  }
  return fiber;
}

void fiber_switch_in(FiberContext* fiber) {
#if DUET_ASAN_FIBERS
  void* outer_fake = nullptr;
  leaving(&outer_fake, stack_bottom(fiber->stack), fiber->stack.size);
#endif
  fiber->suspended = std::move(fiber->suspended).resume();
#if DUET_ASAN_FIBERS
  arrived(outer_fake, nullptr, nullptr);
#endif
}

void fiber_switch_out(FiberContext* fiber) {
#if DUET_ASAN_FIBERS
  leaving(&fiber->fake_stack, fiber->outer_bottom, fiber->outer_size);
#endif
  fiber->caller = std::move(fiber->caller).resume();
#if DUET_ASAN_FIBERS
  arrived(fiber->fake_stack, &fiber->outer_bottom, &fiber->outer_size);
#endif
}

void fiber_destroy(FiberContext* fiber) noexcept { delete fiber; }

std::size_t pooled_fiber_stacks() noexcept {
  std::size_t n = 0;
  for (const StackPool::Bucket& b : t_pool.buckets) n += b.free.size();
  return n;
}

}  // namespace duet::detail
