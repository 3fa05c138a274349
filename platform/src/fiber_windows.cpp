// Fibers on Windows: the system's own (CreateFiberEx / SwitchToFiber).
//
// A Windows fiber cannot be given a new entry function, so a finished one
// is kept in a per-thread pool (up to kPooledFibers per stack size) with
// its trampoline waiting in a loop, and reused for the next fiber task of
// that size. Windows stacks grow through a guard page: an overflow raises
// a stack-overflow exception instead of corrupting memory. The thread that
// first switches into a fiber is converted to a fiber itself (and stays
// one).
// GetCurrentFiber() reads the TEB through mingw's __readgsqword, which
// GCC 12 flags with a false -Warray-bounds.
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Warray-bounds"
#endif

#include <windows.h>

#include <cstddef>
#include <new>
#include <vector>

#include "duet/detail/fiber_context.hpp"

namespace duet::detail {

struct FiberContext {
  LPVOID fiber = nullptr;
  LPVOID caller = nullptr;
  std::size_t stack_size = 0;
  void (*entry)(void*) = nullptr;
  void* arg = nullptr;
};

namespace {

constexpr std::size_t kPooledFibers = 256;

struct Pool {
  std::vector<FiberContext*> idle;
  ~Pool() {
    for (FiberContext* f : idle) {
      DeleteFiber(f->fiber);
      delete f;
    }
  }
};

thread_local Pool t_pool;
thread_local LPVOID t_thread_fiber = nullptr;

VOID CALLBACK trampoline(LPVOID self) {
  auto* f = static_cast<FiberContext*>(self);
  for (;;) {
    f->entry(f->arg);  // catches everything
    SwitchToFiber(f->caller);  // done; resumed only when reused with a new entry
  }
}

}  // namespace

FiberContext* fiber_create(std::size_t stack_size, void (*entry)(void*), void* arg) {
  for (std::size_t i = t_pool.idle.size(); i-- > 0;) {
    FiberContext* f = t_pool.idle[i];
    if (f->stack_size == stack_size) {
      t_pool.idle.erase(t_pool.idle.begin() + static_cast<std::ptrdiff_t>(i));
      f->entry = entry;
      f->arg = arg;
      return f;
    }
  }
  auto* f = new FiberContext;
  f->stack_size = stack_size;
  f->entry = entry;
  f->arg = arg;
  f->fiber = CreateFiberEx(0, stack_size, FIBER_FLAG_FLOAT_SWITCH, trampoline, f);
  if (!f->fiber) {
    delete f;
    throw std::bad_alloc();
  }
  return f;
}

void fiber_switch_in(FiberContext* f) {
  if (!t_thread_fiber) {
    t_thread_fiber = IsThreadAFiber() ? GetCurrentFiber() : ConvertThreadToFiberEx(nullptr, FIBER_FLAG_FLOAT_SWITCH);
    if (!t_thread_fiber) throw std::bad_alloc();
  }
  f->caller = GetCurrentFiber();
  SwitchToFiber(f->fiber);
}

void fiber_switch_out(FiberContext* f) { SwitchToFiber(f->caller); }

void fiber_destroy(FiberContext* f) noexcept {
  // Reusable only if its entry returned (or it never ran): the driver
  // destroys a fiber only then.
  if (t_pool.idle.size() < kPooledFibers) {
    try {
      t_pool.idle.push_back(f);
      return;
    } catch (...) {
    }
  }
  DeleteFiber(f->fiber);
  delete f;
}

std::size_t pooled_fiber_stacks() noexcept { return t_pool.idle.size(); }

}  // namespace duet::detail
