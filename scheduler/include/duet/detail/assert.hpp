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
