// duet/detail/fiber_context.hpp — the stack switching a fiber task needs,
// and nothing more. The scheduler knows only these four functions; the
// duet::fibers library (platform/) implements them with Boost.Context
// natively and Emscripten's fibers (Asyncify) on wasm.
//
//   fiber_create   a suspended fiber that will run entry(arg) on its own stack
//   fiber_switch_in    from the thread's own stack: run the fiber until it
//                      switches out or its entry returns
//   fiber_switch_out   from inside the fiber: back to fiber_switch_in's caller
//   fiber_destroy      a fiber whose entry returned, or that never ran
//
// Nothing is thrown across a switch: the entry must catch everything.
#pragma once

#include <cstddef>

namespace duet::detail {

struct FiberContext;

FiberContext* fiber_create(std::size_t stack_size, void (*entry)(void*), void* arg);
void fiber_switch_in(FiberContext* fiber);
void fiber_switch_out(FiberContext* fiber);
void fiber_destroy(FiberContext* fiber) noexcept;

/// Stacks cached for reuse on this thread (for tests).
std::size_t pooled_fiber_stacks() noexcept;

}  // namespace duet::detail
