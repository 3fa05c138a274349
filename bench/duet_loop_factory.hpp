// The loop duet's benchmarks run on: the native one, or under Emscripten
// (W8: the same workloads as wasm under Node) the web one.
#pragma once

#include <memory>

#include "duet/loop.hpp"
#if defined(__EMSCRIPTEN__)
#include "duet/web/event_loop.hpp"
#else
#include "duet/native/event_loop.hpp"
#endif

namespace bench {

inline std::unique_ptr<duet::Loop> new_duet_loop() {
#if defined(__EMSCRIPTEN__)
  return duet::web::new_event_loop();
#else
  return duet::native::new_event_loop();
#endif
}

}  // namespace bench
