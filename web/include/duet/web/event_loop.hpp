// duet/web/event_loop.hpp — the web layer in one include: new_event_loop(),
// the driver (start/stop), JavaScript interop and fetch.
#pragma once

#include "duet/web/driver.hpp"
#include "duet/web/fetch.hpp"
#include "duet/web/js.hpp"
#include "duet/web/websocket.hpp"
