// duet/platform/poll_backend.hpp — the portable POSIX readiness backend.
// Declared without OS headers (pollfd is only named here); the essay on
// poll is in the .cpp.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <vector>

#include "duet/platform/readiness_backend.hpp"

struct pollfd;

namespace duet::platform {

class PollBackend final : public ReadinessBackend {
 public:
  /// Creates the self-pipe; throws OSError.
  PollBackend();
  PollBackend(const PollBackend&) = delete;
  PollBackend& operator=(const PollBackend&) = delete;
  ~PollBackend() override;

  void wait(std::optional<Duration> timeout, std::vector<IoEvent>& out) override;
  void wake() noexcept override;
  std::string_view name() const noexcept override { return "poll"; }

  void watch(int fd, std::uint32_t interest, EventTarget* target) override;
  void unwatch(int fd) noexcept override;
  // pollable_fd(): -1, the default. The set lives in this object, not in
  // the kernel, so there is no fd a host could poll in its place.

 private:
  /// Where the thread in wait() is, as seen by watch()/unwatch(), which
  /// must interrupt a poll(2) that is using an outdated copy of the set.
  enum class WaitState {
    idle,         // no wait in progress: a change needs no interrupt
    polling,      // a wait polls the copy it took; a change must interrupt it
    interrupted,  // a change has written to the pipe; later ones need not
  };

  void copy_set_locked();
  /// Appends the reports of the last poll; true if the wait should return
  /// (something reported, or wake() was called).
  bool collect_locked(std::vector<IoEvent>& out);
  /// After a change to the set: interrupts a poll of an older copy.
  void note_change_locked() noexcept;

  int pipe_read_ = -1;
  int pipe_write_ = -1;
  // Set by wake() before it writes to the pipe, so that wait() can tell a
  // wake (return) from an interrupt by watch()/unwatch() (poll again).
  std::atomic<bool> woken_{false};
  static_assert(std::atomic<bool>::is_always_lock_free, "wake() must be async-signal-safe");

  std::mutex mutex_;  // guards everything below but polled_
  // The set, guarded by mutex_. Invariants (checked by assert):
  //  * slots_[0] is the pipe's read end, with no target; it never moves.
  //  * for every i >= 1, slot_by_fd_[slots_[i].fd] == i, and every entry
  //    of slot_by_fd_ is -1 or such an index, so watch and unwatch are O(1)
  //    (unwatch swaps the last slot into the hole).
  std::vector<pollfd> slots_;
  std::vector<EventTarget*> targets_;  // parallel to slots_
  std::vector<int> slot_by_fd_;        // by fd: index in slots_, -1 = none
  WaitState state_ = WaitState::idle;

  // The copy of slots_ that poll(2) reads and writes revents into, owned by
  // the one thread in wait(); kept to reuse its capacity.
  std::vector<pollfd> polled_;
};

}  // namespace duet::platform
