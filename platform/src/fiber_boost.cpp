// Fibers natively: Boost.Context's fiber on a pooled, guard-paged stack.
//
// Stacks come from protected_fixedsize_stack (mmap with a PROT_NONE guard
// page below the stack, so an overflow faults) and go back to a per-thread
// pool of up to kPooledStacks per size; the rest are unmapped, so memory
// returns to its baseline after a burst of fibers. Under AddressSanitizer
// the build selects Boost's ucontext implementation with ASan's fiber
// annotations (BOOST_USE_UCONTEXT, BOOST_USE_ASAN; see CMakeLists.txt).
#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>

#include <cstddef>
#include <new>
#include <utility>
#include <vector>

#include "duet/detail/fiber_context.hpp"

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
class PooledStack {
 public:
  explicit PooledStack(std::size_t size) : size_(size) {}
  ctx::stack_context allocate() {
    StackPool::Bucket& b = t_pool.bucket(size_);
    if (!b.free.empty()) {
      ctx::stack_context s = b.free.back();
      b.free.pop_back();
      return s;
    }
    return ctx::protected_fixedsize_stack(size_).allocate();
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
};

}  // namespace

struct FiberContext {
  ctx::fiber suspended;  // the fiber while it does not run
  ctx::fiber caller;     // while it runs: where fiber_switch_out goes
  void (*entry)(void*);
  void* arg;
};

FiberContext* fiber_create(std::size_t stack_size, void (*entry)(void*), void* arg) {
  auto* fiber = new FiberContext{{}, {}, entry, arg};
  try {
    fiber->suspended = ctx::fiber(std::allocator_arg, PooledStack(stack_size), [fiber](ctx::fiber&& caller) {
      fiber->caller = std::move(caller);
      fiber->entry(fiber->arg);  // catches everything
      return std::move(fiber->caller);
    });
  } catch (...) {
    delete fiber;
    throw;
  }
  return fiber;
}

void fiber_switch_in(FiberContext* fiber) { fiber->suspended = std::move(fiber->suspended).resume(); }

void fiber_switch_out(FiberContext* fiber) { fiber->caller = std::move(fiber->caller).resume(); }

void fiber_destroy(FiberContext* fiber) noexcept { delete fiber; }

std::size_t pooled_fiber_stacks() noexcept {
  std::size_t n = 0;
  for (const StackPool::Bucket& b : t_pool.buckets) n += b.free.size();
  return n;
}

}  // namespace duet::detail
