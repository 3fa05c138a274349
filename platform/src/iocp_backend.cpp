#include "duet/platform/iocp_backend.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <system_error>

#include "duet/errors.hpp"
#include "duet/platform/platform.hpp"

namespace duet::platform {
namespace {
[[noreturn]] void throw_last(const char* what) {
  throw_os_error(std::error_code(static_cast<int>(::GetLastError()), std::system_category()), what);
}
}  // namespace

namespace {
std::atomic<std::uint64_t> g_next_id{1};
}  // namespace

IocpBackend::IocpBackend()
    : port_(::CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1)),
      id_(g_next_id.fetch_add(1, std::memory_order_relaxed)),
      entries_(64) {
  if (!port_) throw_last("CreateIoCompletionPort");
}

IocpBackend::~IocpBackend() {
  ::CloseHandle(port_);
}

void IocpBackend::associate(HANDLE handle) {
  if (!::CreateIoCompletionPort(handle, port_, kIoKey, 0)) throw_last("CreateIoCompletionPort(associate)");
}

void IocpBackend::wait(std::optional<Duration> timeout, std::vector<IoEvent>& out) {
  DWORD ms = INFINITE;
  if (timeout) {
    const auto rounded = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
    ms = rounded <= 0 ? 0 : rounded >= static_cast<long long>(INFINITE) ? INFINITE - 1 : static_cast<DWORD>(rounded);
  }
  ULONG n = 0;
  if (!::GetQueuedCompletionStatusEx(port_, entries_.data(), static_cast<ULONG>(entries_.size()), &n, ms, FALSE)) {
    const DWORD error = ::GetLastError();
    if (error == WAIT_TIMEOUT) return;
    throw_os_error(std::error_code(static_cast<int>(error), std::system_category()), "GetQueuedCompletionStatusEx");
  }
  for (ULONG i = 0; i < n; ++i) {
    const OVERLAPPED_ENTRY& e = entries_[i];
    if (e.lpCompletionKey == kWakeKey || !e.lpOverlapped) continue;
    auto* op = static_cast<IocpOverlapped*>(e.lpOverlapped);
    ++completions_;
    out.push_back(IoEvent{op->target, 0, static_cast<std::int64_t>(e.dwNumberOfBytesTransferred)});
  }
}

void IocpBackend::wake() noexcept {
  ::PostQueuedCompletionStatus(port_, 0, kWakeKey, nullptr);
}

std::unique_ptr<Backend> make_default_backend() {
  return std::make_unique<IocpBackend>();
}

std::unique_ptr<Backend> make_backend(std::string_view name) {
  if (name.empty() || name == "iocp") return make_default_backend();
  throw ValueError("duet: no backend named '" + std::string(name) + "' in this build (Windows has: iocp)");
}

}  // namespace duet::platform
