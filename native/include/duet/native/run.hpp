// duet/native/run.hpp — duet::run(main()), as asyncio.run(main()): a fresh
// loop on this system's backend, main run to completion, remaining tasks
// cancelled and finished, the loop closed; main's result returned or its
// exception rethrown. See duet/run.hpp for the exact sequence.
#pragma once

#include "duet/native/event_loop.hpp"
#include "duet/run.hpp"

namespace duet {

template <class T>
T run(Coro<T> main, LoopOptions options = {}) {
  if (running_loop()) throw RuntimeError("duet::run() cannot be called from a running event loop");
  auto loop = native::new_event_loop(options);
  return run_main(*loop, std::move(main));
}

}  // namespace duet
