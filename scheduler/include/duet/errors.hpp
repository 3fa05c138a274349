// duet/errors.hpp — the exception types duet throws, named after asyncio's.
//
// The error model, in one place:
//  * Misuse of the API (scheduling on a closed loop, running a loop twice,
//    closing a running loop, ...) throws RuntimeError with a message that
//    says what was wrong, as asyncio raises RuntimeError. Nothing is
//    scheduled and no state changes when that happens.
//  * An exception that escapes a callback never escapes the loop: it goes to
//    the loop's exception handler and the loop keeps running.
//  * Operations on an object in the wrong state (a future's result read
//    before it is done, set twice) throw InvalidStateError.
#pragma once

#include <stdexcept>
#include <string>

namespace duet {

/// Misuse of the loop or of another duet object (asyncio: RuntimeError).
class RuntimeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An operation not allowed in the object's current state
/// (asyncio.InvalidStateError).
class InvalidStateError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// A lookup found nothing: a ContextVar with no value in the current
/// context and no default (Python's LookupError).
class LookupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An argument of the right type but the wrong value, e.g. a ContextVar
/// token given to another variable (Python's ValueError).
class ValueError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// The operation was cancelled (asyncio.CancelledError). Like Python's
/// (a BaseException since 3.8), it does NOT derive from std::exception, so
/// that `catch (const std::exception&)` in user code does not swallow a
/// cancellation by accident. Catch it by name, and re-throw it unless you
/// mean to refuse the cancellation.
class CancelledError {
 public:
  CancelledError() = default;
  explicit CancelledError(std::string message) : message_(std::move(message)) {}
  const std::string& message() const noexcept { return message_; }
  const char* what() const noexcept { return message_.c_str(); }

 private:
  std::string message_;
};

/// A deadline passed (asyncio's TimeoutError, the builtin since 3.11).
class TimeoutError : public std::runtime_error {
 public:
  TimeoutError() : std::runtime_error("timed out") {}
  using std::runtime_error::runtime_error;
};

/// A Barrier was aborted or reset while a task waited on it
/// (asyncio.BrokenBarrierError).
class BrokenBarrierError : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
};

/// get_nowait() on an empty queue (asyncio.QueueEmpty).
class QueueEmpty : public std::runtime_error {
 public:
  QueueEmpty() : std::runtime_error("queue is empty") {}
};

/// put_nowait() on a full queue (asyncio.QueueFull).
class QueueFull : public std::runtime_error {
 public:
  QueueFull() : std::runtime_error("queue is full") {}
};

/// put on a queue that was shut down, or get on one that is shut down and
/// empty (asyncio.QueueShutDown, 3.13).
class QueueShutDown : public std::runtime_error {
 public:
  QueueShutDown() : std::runtime_error("queue is shut down") {}
};

}  // namespace duet
