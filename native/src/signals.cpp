#include "duet/native/signals.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <map>
#include <mutex>
#include <string>

#include "duet/errors.hpp"
#include "duet/native/io.hpp"
#include "duet/native/socket.hpp"
#include "posix_compat.hpp"

namespace duet::native {
namespace {

// The write end of the self-pipe of the loop handling each signal (-1:
// none). Read in signal context, so a lock-free atomic per signal.
// Stored as fd + 1, so that zero-initialisation means "none".
std::atomic<int> g_wakeup_fd_plus_one[NSIG];

int wakeup_fd(int sig) noexcept {
  return g_wakeup_fd_plus_one[sig].load(std::memory_order_relaxed) - 1;
}
void set_wakeup_fd(int sig, int fd) noexcept {
  g_wakeup_fd_plus_one[sig].store(fd + 1);
}
static_assert(std::atomic<int>::is_always_lock_free);
std::mutex g_owner_mutex;  // serialises add/remove across loops

extern "C" void on_signal(int sig) {
  const int saved = errno;
  const int fd = wakeup_fd(sig);
  if (fd >= 0) {
    const unsigned char byte = static_cast<unsigned char>(sig);
    // Non-blocking: a full pipe already guarantees a wakeup.
    [[maybe_unused]] ssize_t r = ::write(fd, &byte, 1);
  }
  errno = saved;
}

void check_signal(int sig) {
  if (sig <= 0 || sig >= NSIG)
    throw ValueError("sig " + std::to_string(sig) + " out of range(1, " + std::to_string(NSIG) + ")");
  if (sig == SIGKILL || sig == SIGSTOP) throw RuntimeError("sig " + std::to_string(sig) + " cannot be caught");
}

class SignalService final : public LoopService {
 public:
  explicit SignalService(Loop& loop) : loop_(loop) {
    int fds[2];
    if (compat::pipe_nonblocking(fds) < 0) throw_errno("pipe2()");
    read_fd_ = fds[0];
    write_fd_ = fds[1];
  }
  ~SignalService() override { shutdown(); }

  void shutdown() noexcept override {
    std::lock_guard lock(g_owner_mutex);
    for (auto& [sig, entry] : handlers_) release(sig, entry);
    handlers_.clear();
    if (read_fd_ >= 0) {
      if (watching_) {
        if (auto* table = loop_.is_closed() ? nullptr : &*fd_table(loop_)) table->forget(read_fd_);
      }
      ::close(read_fd_);
      ::close(write_fd_);
      read_fd_ = write_fd_ = -1;
    }
  }

  void add(int sig, std::function<void()> fn, Context context) {
    check_signal(sig);
    if (!watching_) {
      fd_table(loop_)->add_callback(
          read_fd_, Direction::read, [this] { drain(); }, Context());
      watching_ = true;
    }
    std::lock_guard lock(g_owner_mutex);
    auto it = handlers_.find(sig);
    if (it == handlers_.end()) {
      const int owner = wakeup_fd(sig);
      if (owner >= 0) throw RuntimeError("sig " + std::to_string(sig) + " is handled by another event loop");
      Entry entry;
      struct sigaction action {};
      action.sa_handler = on_signal;
      sigemptyset(&action.sa_mask);
      action.sa_flags = SA_RESTART;  // asyncio: signal.siginterrupt(sig, False)
      set_wakeup_fd(sig, write_fd_);
      if (::sigaction(sig, &action, &entry.previous) < 0) {
        set_wakeup_fd(sig, -1);
        throw_errno("sigaction(" + std::to_string(sig) + ")");
      }
      it = handlers_.emplace(sig, std::move(entry)).first;
    }
    it->second.fn = std::make_shared<std::function<void()>>(std::move(fn));
    it->second.context.emplace(std::move(context));
  }

  bool remove(int sig) {
    check_signal(sig);
    std::lock_guard lock(g_owner_mutex);
    auto it = handlers_.find(sig);
    if (it == handlers_.end()) return false;
    release(sig, it->second);
    handlers_.erase(it);
    return true;
  }

 private:
  struct Entry {
    std::shared_ptr<std::function<void()>> fn;
    std::optional<Context> context;
    struct sigaction previous {};
  };

  static void release(int sig, Entry& entry) noexcept {
    ::sigaction(sig, &entry.previous, nullptr);
    set_wakeup_fd(sig, -1);
  }

  // A loop callback: each signal received becomes a callback of its own
  // (asyncio's _handle_signal adds the handler's Handle to the ready queue).
  void drain() {
    unsigned char bytes[256];
    for (;;) {
      const ssize_t n = ::read(read_fd_, bytes, sizeof bytes);
      if (n <= 0) return;
      for (ssize_t i = 0; i < n; ++i) {
        auto it = handlers_.find(bytes[i]);
        if (it == handlers_.end()) continue;  // removed since it arrived
        loop_.call_soon(*it->second.context, [fn = it->second.fn] { (*fn)(); });
      }
    }
  }

  Loop& loop_;
  int read_fd_ = -1;
  int write_fd_ = -1;
  bool watching_ = false;
  std::map<int, Entry> handlers_;
};

}  // namespace

void detail::add_signal_handler(Loop& loop, int sig, std::function<void()> fn, Context context) {
  loop.use_service<SignalService>().add(sig, std::move(fn), std::move(context));
}

bool remove_signal_handler(Loop& loop, int sig) {
  check_signal(sig);
  auto* service = loop.find_service<SignalService>();
  return service && service->remove(sig);
}

}  // namespace duet::native
