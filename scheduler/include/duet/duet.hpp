// duet/duet.hpp — everything duet offers on this target, in one include.
#pragma once

#include "duet/backend.hpp"
#include "duet/context.hpp"
#include "duet/coro.hpp"
#include "duet/coroutine.hpp"
#include "duet/errors.hpp"
#include "duet/exception_context.hpp"
#include "duet/future.hpp"
#include "duet/gather.hpp"
#include "duet/handle.hpp"
#include "duet/locks.hpp"
#include "duet/loop.hpp"
#include "duet/outcome.hpp"
#include "duet/queues.hpp"
#include "duet/run.hpp"
#include "duet/shield.hpp"
#include "duet/sleep.hpp"
#include "duet/task.hpp"
#include "duet/task_group.hpp"
#include "duet/time.hpp"
#include "duet/timeout.hpp"
#include "duet/wait.hpp"

#if __has_include("duet/platform/platform.hpp")
#include "duet/platform/platform.hpp"
#endif
#if __has_include("duet/native/native.hpp")
#include "duet/native/native.hpp"
#endif
#if __has_include("duet/web/event_loop.hpp")
#include "duet/web/event_loop.hpp"
#endif
