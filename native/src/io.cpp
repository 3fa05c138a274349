#include "duet/native/io.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <system_error>

#include "duet/errors.hpp"
#include "duet/platform/readiness_backend.hpp"
#include "posix_compat.hpp"
#include "sys_socket.hpp"

namespace duet::native {

// One fd's two directions. Kept for the table's life (by fd number), so
// the backend's target pointer and scheduled callbacks never dangle; a
// callback checks the generation it was scheduled with, so one removed or
// replaced in the meantime does not run (asyncio cancels its Handle).
struct FdTable::Watch final : EventTarget {
  enum class Kind : std::uint8_t { none, callback, waiter, handler };
  struct Slot {
    Kind kind = Kind::none;
    std::uint32_t generation = 0;
    std::shared_ptr<std::function<void()>> callback;
    std::optional<Context> context;
    std::optional<Future<void>> waiter;
    FdHandler* handler = nullptr;

    void clear() noexcept {
      kind = Kind::none;
      ++generation;
      callback.reset();
      context.reset();
      waiter.reset();
      handler = nullptr;
    }
  };

  FdTable* table = nullptr;
  int fd = -1;
  std::uint32_t interest = 0;  // what the backend has
  Slot slots[2];

  Slot& slot(Direction d) noexcept { return slots[static_cast<int>(d)]; }

  // Why a new user of direction d is refused: who holds it. A callback
  // there may be stale: add_reader on an fd closed without remove_reader,
  // whose number the kernel then gave to the fd now being used.
  std::string busy_message(Direction d) {
    const bool read = d == Direction::read;
    const std::string what = std::string(read ? "read" : "write") + " fd " + std::to_string(fd);
    switch (slot(d).kind) {
      case Kind::waiter:
        return "another operation is already waiting to " + what;
      case Kind::handler:
        return "a transport is already waiting to " + what;
      case Kind::callback:
      case Kind::none:
        break;
    }
    const std::string remove = std::string(read ? "remove_reader" : "remove_writer") + "(" + std::to_string(fd) + ")";
    return std::string("a ") + (read ? "reader" : "writer") + " callback is already waiting to " + what +
           " (if an earlier fd " + std::to_string(fd) + " was closed without " + remove +
           ", its stale callback is still registered: call " + remove + " before closing an fd)";
  }

  void on_event(Loop&, const IoEvent& event) override {
    const bool failed = event.flags & (event_flags::error | event_flags::hangup);
    if ((event.flags & event_flags::readable) || failed) fire(Direction::read);
    if ((event.flags & event_flags::writable) || failed) fire(Direction::write);
  }

  void fire(Direction d) {
    Slot& s = slot(d);
    switch (s.kind) {
      case Kind::none:
        return;
      case Kind::callback: {
        Loop& loop = table->loop_;
        loop.call_soon(*s.context, [this, d, generation = s.generation, callback = s.callback] {
          if (slot(d).generation == generation) (*callback)();
        });
        return;
      }
      case Kind::waiter: {
        Future<void> waiter = std::move(*s.waiter);
        s.clear();
        try {
          table->update_interest(*this);
        } catch (...) {
          // Only an fd closed behind our back fails here; the waiter's
          // retry then reports the error.
        }
        if (!waiter.done()) waiter.set_result();
        return;
      }
      case Kind::handler:
        s.handler->on_ready(d);
        return;
    }
  }
};

FdTable::FdTable(Loop& loop, platform::ReadinessBackend& backend) : loop_(loop), backend_(&backend) {}

FdTable::~FdTable() {
  shutdown();
}

FdTable::Watch& FdTable::watch_of(int fd) {
  if (fd < 0) throw_os_error(std::make_error_code(std::errc::bad_file_descriptor), "fd " + std::to_string(fd));
  const auto index = static_cast<std::size_t>(fd);
  if (index >= watches_.size()) watches_.resize(index + 1);
  std::unique_ptr<Watch>& w = watches_[index];
  if (!w) {
    w = std::make_unique<Watch>();
    w->table = this;
    w->fd = fd;
  }
  return *w;
}

FdTable::Watch* FdTable::find(int fd) noexcept {
  if (fd < 0 || static_cast<std::size_t>(fd) >= watches_.size()) return nullptr;
  return watches_[static_cast<std::size_t>(fd)].get();
}

void FdTable::update_interest(Watch& w, bool force) {
  std::uint32_t wanted = 0;
  if (w.slots[0].kind != Watch::Kind::none) wanted |= event_flags::readable;
  if (w.slots[1].kind != Watch::Kind::none) wanted |= event_flags::writable;
  if (!backend_ || (wanted == w.interest && !force)) return;
  if (wanted == 0)
    backend_->unwatch(w.fd);
  else
    backend_->watch(w.fd, wanted, &w);
  w.interest = wanted;
}

namespace {

const char* direction_name(Direction d) {
  return d == Direction::read ? "read" : "write";
}

}  // namespace

void FdTable::add_callback(int fd, Direction direction, std::function<void()> fn, Context context) {
  Watch& w = watch_of(fd);
  Watch::Slot& s = w.slot(direction);
  if (s.kind == Watch::Kind::waiter || s.kind == Watch::Kind::handler)
    throw RuntimeError("fd " + std::to_string(fd) + " is used by a " +
                       (s.kind == Watch::Kind::waiter ? "waiting operation" : "transport") + " for " +
                       direction_name(direction));
  Watch::Slot fresh;
  fresh.kind = Watch::Kind::callback;
  fresh.generation = s.generation + 1;
  fresh.callback = std::make_shared<std::function<void()>>(std::move(fn));
  fresh.context.emplace(std::move(context));
  const Watch::Slot saved = s;
  s = std::move(fresh);
  try {
    // Registered again even when the interest looks unchanged: a raw fd
    // may have been closed without remove_reader and its number reused,
    // and the kernel's set forgot it (asyncio would raise; this re-adds).
    update_interest(w, /*force=*/true);
  } catch (...) {
    s = saved;
    ++s.generation;
    throw;
  }
}

bool FdTable::remove_callback(int fd, Direction direction) {
  Watch* found = find(fd);
  if (!found) return false;
  Watch& w = *found;
  Watch::Slot& s = w.slot(direction);
  if (s.kind != Watch::Kind::callback) return false;
  s.clear();
  update_interest(w);
  return true;
}

Future<void> FdTable::wait(int fd, Direction direction) {
  Watch& w = watch_of(fd);
  Watch::Slot& s = w.slot(direction);
  if (s.kind != Watch::Kind::none) throw RuntimeError(w.busy_message(direction));
  Future<void> future(loop_);
  s.kind = Watch::Kind::waiter;
  s.waiter.emplace(future);
  try {
    update_interest(w);
  } catch (...) {
    s.clear();
    throw;
  }
  return future;
}

void FdTable::cancel_wait(int fd, Direction direction, const duet::detail::FutureBase* which) noexcept {
  Watch* found = find(fd);
  if (!found) return;
  Watch& w = *found;
  Watch::Slot& s = w.slot(direction);
  if (s.kind != Watch::Kind::waiter || s.waiter->base() != which) return;
  s.clear();
  try {
    update_interest(w);
  } catch (...) {
    // Withdrawing interest only fails for an fd closed behind our back;
    // epoll has then forgotten it already.
  }
}

void FdTable::set_handler(int fd, Direction direction, FdHandler* handler) {
  Watch& w = watch_of(fd);
  Watch::Slot& s = w.slot(direction);
  if (s.kind == Watch::Kind::handler && s.handler == handler) return;
  if (s.kind != Watch::Kind::none) throw RuntimeError(w.busy_message(direction));
  s.kind = Watch::Kind::handler;
  s.handler = handler;
  try {
    update_interest(w);
  } catch (...) {
    s.clear();
    throw;
  }
}

void FdTable::clear_handler(int fd, Direction direction) noexcept {
  Watch* found = find(fd);
  if (!found) return;
  Watch& w = *found;
  Watch::Slot& s = w.slot(direction);
  if (s.kind != Watch::Kind::handler) return;
  s.clear();
  try {
    update_interest(w);
  } catch (...) {
  }
}

void FdTable::forget(int fd) noexcept {
  Watch* found = find(fd);
  if (!found) return;
  Watch& w = *found;
  if (w.interest && backend_) backend_->unwatch(fd);
  w.interest = 0;
  for (Watch::Slot& s : w.slots) {
    if (s.kind != Watch::Kind::waiter || s.waiter->done() || loop_.is_closed()) {
      s.clear();
      continue;
    }
    Future<void> waiter = *s.waiter;
    s.clear();
    try {
      waiter.set_exception(make_os_error(std::make_error_code(std::errc::bad_file_descriptor),
                                         "fd " + std::to_string(fd) + " was closed while an operation waited on it"));
    } catch (...) {
      // Out of memory for the error: the waiter is cancelled instead, so
      // that it does not wait forever.
      waiter.cancel();
    }
  }
}

void FdTable::shutdown() noexcept {
  // Transports first: they may hold themselves alive while they have bytes
  // to send, and close their fds (which calls forget()) when told.
  std::vector<FdHandler*> handlers;
  for (auto& w : watches_)
    if (w)
      for (Watch::Slot& s : w->slots)
        if (s.kind == Watch::Kind::handler && std::find(handlers.begin(), handlers.end(), s.handler) == handlers.end())
          handlers.push_back(s.handler);
  for (FdHandler* h : handlers) h->on_shutdown();
  for (std::size_t fd = 0; fd < watches_.size(); ++fd) {
    if (!watches_[fd]) continue;
    Watch& w = *watches_[fd];
    if (w.interest && backend_) backend_->unwatch(static_cast<int>(fd));
    w.interest = 0;
    for (Watch::Slot& s : w.slots) s.clear();
  }
  backend_ = nullptr;
}

// ---- the loop service ------------------------------------------------------------------------

namespace {

class IoService final : public LoopService {
 public:
  explicit IoService(Loop& loop) {
    auto* backend = dynamic_cast<platform::ReadinessBackend*>(&loop.backend());
    if (!backend)
      throw RuntimeError("the loop's backend (" + std::string(loop.backend().name()) +
                         ") does not watch fds; fd readiness needs epoll, kqueue or poll");
    table_ = std::make_shared<FdTable>(loop, *backend);
  }
  void shutdown() noexcept override { table_->shutdown(); }
  const std::shared_ptr<FdTable>& table() const noexcept { return table_; }

 private:
  std::shared_ptr<FdTable> table_;
};

}  // namespace

const std::shared_ptr<FdTable>& fd_table(Loop& loop) {
  return loop.use_service<IoService>().table();
}

bool remove_reader(Loop& loop, int fd) {
  return fd_table(loop)->remove_callback(fd, Direction::read);
}
bool remove_writer(Loop& loop, int fd) {
  return fd_table(loop)->remove_callback(fd, Direction::write);
}

// ---- socket operations --------------------------------------------------------------------------

ReadyAwaiter::ReadyAwaiter(Socket& socket, Direction direction)
    : table_(fd_table(get_running_loop())),
      fd_(socket.fileno()),
      direction_(direction),
      future_(table_->wait(fd_, direction)) {
  socket.attach(table_);
}

namespace {

bool would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK;
}

}  // namespace

Coro<std::pair<Socket, SocketAddress>> sock_accept(Socket& listener) {
  sys::check_open(listener, "sock_accept");
  for (;;) {
    SocketAddress peer;
    socklen_t length = SocketAddress::capacity();
    const int fd = compat::accept(listener.fileno(), static_cast<sockaddr*>(peer.native()), &length);
    if (fd >= 0) {
      co_return std::pair<Socket, SocketAddress>(Socket::adopt(fd), peer);
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (!would_block(errno)) throw_errno("accept()");
    co_await ReadyAwaiter(listener, Direction::read);
  }
}

Coro<void> sock_connect(Socket& socket, SocketAddress address) {
  sys::check_open(socket, "sock_connect");
  int rc;
  do {
    rc = ::connect(socket.fileno(), static_cast<const sockaddr*>(address.native()),
                   static_cast<socklen_t>(address.native_size()));
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) co_return;
  if (errno != EINPROGRESS && errno != EAGAIN) throw_errno("connect(" + address.to_string() + ")");
  co_await ReadyAwaiter(socket, Direction::write);
  const int err = socket.get_option(SOL_SOCKET, SO_ERROR);
  if (err != 0) throw_os_error(std::error_code(err, std::generic_category()), "connect(" + address.to_string() + ")");
}

Coro<std::size_t> sock_recv_into(Socket& socket, std::span<char> buffer) {
  sys::check_open(socket, "sock_recv_into");
  for (;;) {
    const ssize_t n = ::recv(socket.fileno(), buffer.data(), buffer.size(), 0);
    if (n >= 0) co_return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (!would_block(errno)) throw_errno("recv()");
    co_await ReadyAwaiter(socket, Direction::read);
  }
}

Coro<void> sock_sendall(Socket& socket, std::string_view data) {
  sys::check_open(socket, "sock_sendall");
  while (!data.empty()) {
    const ssize_t n = ::send(socket.fileno(), data.data(), data.size(), compat::kSendFlags);
    if (n >= 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (!would_block(errno)) throw_errno("send()");
    co_await ReadyAwaiter(socket, Direction::write);
  }
}

}  // namespace duet::native
