// duet/native/native.hpp — the native layer in one include: the loop
// factory and run(), the thread-pool executor, guest mode, sockets and TCP
// streams, and on POSIX fd readiness and signals.
#pragma once

#include "duet/native/event_loop.hpp"
#include "duet/native/executor.hpp"
#include "duet/native/guest.hpp"
#include "duet/native/run.hpp"
#if !defined(__EMSCRIPTEN__)
#include "duet/native/io.hpp"
#include "duet/native/socket.hpp"
#include "duet/native/streams.hpp"
#endif
#if !defined(_WIN32) && !defined(__EMSCRIPTEN__)
#include "duet/native/signals.hpp"
#endif
