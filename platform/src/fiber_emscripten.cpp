// Fibers on wasm: Emscripten's emscripten_fiber_* (Asyncify unwinds and
// rewinds the wasm call stack; the C stack is switched by hand). Needs
// -sASYNCIFY at link time, which duet::fibers adds for its users only.
//
// Each fiber owns a C stack and an Asyncify stack (where the unwound
// wasm frames are saved), both from a per-thread pool. wasm has no guard
// pages: an overflow of the C stack is not caught.
#include <emscripten/fiber.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

#include "duet/detail/fiber_context.hpp"

namespace duet::detail {
namespace {

// The main context's Asyncify stack; a fiber's is as large as its C stack
// (the wasm frames it saves grow with the call depth, as the C stack does).
constexpr std::size_t kAsyncifyStack = 64 * 1024;
constexpr std::size_t kPooledStacks = 256;

struct Stacks {
  std::size_t size;
  void* c_stack;
  void* asyncify_stack;
};

std::vector<Stacks> g_pool;  // wasm here is single-threaded

emscripten_fiber_t g_main;
alignas(16) char g_main_asyncify_stack[kAsyncifyStack];
bool g_main_ready = false;

Stacks take_stacks(std::size_t size) {
  for (std::size_t i = 0; i < g_pool.size(); ++i)
    if (g_pool[i].size == size) {
      Stacks s = g_pool[i];
      g_pool.erase(g_pool.begin() + static_cast<std::ptrdiff_t>(i));
      return s;
    }
  void* c = std::aligned_alloc(16, size);
  void* a = std::aligned_alloc(16, size);
  if (!c || !a) {
    std::free(c);
    std::free(a);
    throw std::bad_alloc();
  }
  return Stacks{size, c, a};
}

void give_stacks(Stacks s) noexcept {
  if (g_pool.size() < kPooledStacks) {
    try {
      g_pool.push_back(s);
      return;
    } catch (...) {
    }
  }
  std::free(s.c_stack);
  std::free(s.asyncify_stack);
}

}  // namespace

struct FiberContext {
  emscripten_fiber_t fiber;
  Stacks stacks;
  void (*entry)(void*);
  void* arg;
};

namespace {

void trampoline(void* self) {
  auto* fiber = static_cast<FiberContext*>(self);
  fiber->entry(fiber->arg);  // catches everything
  // An Emscripten fiber must never return: go back for good.
  emscripten_fiber_swap(&fiber->fiber, &g_main);
}

}  // namespace

FiberContext* fiber_create(std::size_t stack_size, void (*entry)(void*), void* arg) {
  Stacks stacks = take_stacks(stack_size);
  auto* fiber = new (std::nothrow) FiberContext{{}, stacks, entry, arg};
  if (!fiber) {
    give_stacks(stacks);
    throw std::bad_alloc();
  }
  emscripten_fiber_init(&fiber->fiber, trampoline, fiber, stacks.c_stack, stacks.size, stacks.asyncify_stack,
                        stacks.size);
  return fiber;
}

void fiber_switch_in(FiberContext* fiber) {
  if (!g_main_ready) {
    emscripten_fiber_init_from_current_context(&g_main, g_main_asyncify_stack, sizeof g_main_asyncify_stack);
    g_main_ready = true;
  }
  emscripten_fiber_swap(&g_main, &fiber->fiber);
}

void fiber_switch_out(FiberContext* fiber) { emscripten_fiber_swap(&fiber->fiber, &g_main); }

void fiber_destroy(FiberContext* fiber) noexcept {
  give_stacks(fiber->stacks);
  delete fiber;
}

std::size_t pooled_fiber_stacks() noexcept { return g_pool.size(); }

}  // namespace duet::detail
