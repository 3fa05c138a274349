// Backend selection on POSIX systems: the system's best readiness backend
// (epoll on Linux, kqueue on the BSDs and macOS), or poll by name.
#include <cstdlib>
#include <string>

#include "duet/errors.hpp"
#include "duet/platform/platform.hpp"
#include "duet/platform/poll_backend.hpp"
#if defined(__linux__)
#include "duet/platform/epoll_backend.hpp"
#else
#include "duet/platform/kqueue_backend.hpp"
#endif

namespace duet::platform {
namespace {

#if defined(__linux__)
using BestBackend = EpollBackend;
constexpr std::string_view kBest = "epoll";
#else
using BestBackend = KqueueBackend;
constexpr std::string_view kBest = "kqueue";
#endif

}  // namespace

std::unique_ptr<Backend> make_backend(std::string_view name) {
  if (name.empty() || name == kBest) return std::make_unique<BestBackend>();
  if (name == "poll") return std::make_unique<PollBackend>();
  throw ValueError("duet: no backend named '" + std::string(name) + "' in this build (it has " + std::string(kBest) +
                   " and poll)");
}

std::unique_ptr<Backend> make_default_backend() {
  const char* name = std::getenv("DUET_BACKEND");
  return make_backend(name ? name : "");
}

}  // namespace duet::platform
