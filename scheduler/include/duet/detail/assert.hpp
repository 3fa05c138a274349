// duet/detail/assert.hpp — internal invariant checks that compile out with
// NDEBUG, like libuv's heap-inl.h checks. They guard duet's own invariants;
// misuse by a caller gets an exception instead (see duet/errors.hpp).
#pragma once

#include <cstdio>
#include <cstdlib>

#ifdef NDEBUG
#define DUET_ASSERT(cond) ((void)0)
#else
#define DUET_ASSERT(cond)                                                                  \
  ((cond) ? (void)0                                                                        \
          : (std::fprintf(stderr, "duet internal error: %s:%d: assertion '%s' failed\n", \
                          __FILE__, __LINE__, #cond),                                      \
             std::abort()))
#endif

// Under AddressSanitizer the recycling pools (nodes, ready blocks, frames)
// return memory to the heap at once, so that a use after free is reported
// instead of being hidden by reuse.
#if defined(__SANITIZE_ADDRESS__)
#define DUET_POOLS_DISABLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DUET_POOLS_DISABLED 1
#endif
#endif
#ifndef DUET_POOLS_DISABLED
#define DUET_POOLS_DISABLED 0
#endif
