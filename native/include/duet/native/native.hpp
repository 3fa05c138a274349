// duet/native/native.hpp — the native layer in one include: the loop
// factory and run(), and on POSIX fds, sockets, TCP streams, the thread-pool
// executor and signals.
#pragma once

#include "duet/native/event_loop.hpp"
#include "duet/native/executor.hpp"
#include "duet/native/guest.hpp"
#include "duet/native/run.hpp"
#if !defined(_WIN32) && !defined(__EMSCRIPTEN__)
#include "duet/native/io.hpp"
#include "duet/native/signals.hpp"
#include "duet/native/socket.hpp"
#include "duet/native/streams.hpp"
#endif
