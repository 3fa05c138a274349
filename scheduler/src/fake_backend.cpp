#include "duet/testing/fake_backend.hpp"

namespace duet::testing {

void FakeBackend::wait(std::optional<Duration> timeout, std::vector<IoEvent>& out) {
  std::unique_lock lock(mutex_);
  ++waits_;
  last_timeout_ = timeout;
  auto ready = [this] { return woken_ || !injected_.empty(); };
  if (!ready()) {
    if (!timeout) {
      cv_.wait(lock, ready);
    } else if (clock_) {
      clock_->advance(*timeout);
    } else {
      cv_.wait_for(lock, *timeout, ready);
    }
  }
  woken_ = false;
  out.insert(out.end(), injected_.begin(), injected_.end());
  injected_.clear();
}

void FakeBackend::wake() noexcept {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
    ++wakes_;
  }
  cv_.notify_all();
}

void FakeBackend::inject(IoEvent event) {
  {
    std::lock_guard lock(mutex_);
    injected_.push_back(event);
  }
  cv_.notify_all();
}

std::uint64_t FakeBackend::wake_count() const {
  std::lock_guard lock(mutex_);
  return wakes_;
}

std::uint64_t FakeBackend::wait_count() const {
  std::lock_guard lock(mutex_);
  return waits_;
}

std::optional<Duration> FakeBackend::last_timeout() const {
  std::lock_guard lock(mutex_);
  return last_timeout_;
}

}  // namespace duet::testing
