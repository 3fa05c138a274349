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

#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

namespace duet {

/// Misuse of the loop or of another duet object (asyncio: RuntimeError).
class RuntimeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The operation is not available on this platform or loop, e.g.
/// add_reader on Windows' completion-port loop (Python's
/// NotImplementedError, which is a RuntimeError).
class NotImplementedError : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
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

/// duet::run() was interrupted by SIGINT (Ctrl+C): its main task was
/// cancelled, as asyncio.Runner does, and this replaces the cancellation.
/// Like Python's KeyboardInterrupt (a BaseException) it does not derive
/// from std::exception.
class KeyboardInterrupt {
 public:
  const char* what() const noexcept { return "KeyboardInterrupt"; }
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

// ---- operating-system errors (Python's OSError tree) -------------------------
//
// I/O fails with an OSError carrying the error code (code()), named after
// the Python subclass a user would catch: ConnectionRefusedError for
// ECONNREFUSED, ConnectionResetError for ECONNRESET, and so on.
// throw_os_error() picks the class from the code.

/// An operating-system call failed (Python's OSError).
class OSError : public std::system_error {
 public:
  /// Tag for an OSError whose message is the text alone.
  struct MessageOnly {};
  static constexpr MessageOnly message_only{};

  /// what() is "<what>: <description of code>".
  OSError(std::error_code code, const std::string& what) : std::system_error(code, what) {}
  /// what() is `message` alone, for an error that no system call reported:
  /// Python's OSError made from a message, as asyncio's
  /// ConnectionResetError('Connection lost'). code() still classifies it.
  OSError(std::error_code code, const std::string& message, MessageOnly)
      : std::system_error(code, message), message_(message) {}

  const char* what() const noexcept override { return message_ ? message_->what() : std::system_error::what(); }

 private:
  std::optional<std::runtime_error> message_;  // copied without throwing, as an exception must be
};
/// Python's ConnectionError and its subclasses.
class ConnectionError : public OSError {
 public:
  using OSError::OSError;
};
class ConnectionRefusedError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
class ConnectionResetError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
class ConnectionAbortedError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
class BrokenPipeError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
/// A name lookup failed (Python's socket.gaierror); code() is in
/// gai_category() on POSIX.
class GaiError : public OSError {
 public:
  using OSError::OSError;
};

/// Throws the OSError subclass Python would raise for `code`, with the
/// message "<what>: <strerror>".
[[noreturn]] void throw_os_error(std::error_code code, const std::string& what);
/// The same exception as an exception_ptr, for futures.
std::exception_ptr make_os_error(std::error_code code, const std::string& what);
/// throw_os_error for the current errno (a C or POSIX call failed): the
/// one place the backends and the native layer turn errno into OSError.
[[noreturn]] void throw_errno(const std::string& what);

/// readexactly() or readuntil() met EOF first (asyncio.IncompleteReadError):
/// partial() holds the bytes read, expected() how many were asked for, or
/// nullopt when no count was (readuntil; asyncio's expected=None, whose
/// message says "undefined").
class IncompleteReadError : public std::runtime_error {
 public:
  IncompleteReadError(std::string partial, std::optional<std::size_t> expected)
      : std::runtime_error(std::to_string(partial.size()) + " bytes read on a total of " +
                           (expected ? std::to_string(*expected) : std::string("undefined")) + " expected bytes"),
        partial_(std::move(partial)),
        expected_(expected) {}
  const std::string& partial() const noexcept { return partial_; }
  std::optional<std::size_t> expected() const noexcept { return expected_; }

 private:
  std::string partial_;
  std::optional<std::size_t> expected_;
};

/// readuntil()/readline() found the limit reached before the separator
/// (asyncio.LimitOverrunError); consumed() is how many bytes are to be
/// consumed to go past it.
class LimitOverrunError : public std::runtime_error {
 public:
  LimitOverrunError(const std::string& message, std::size_t consumed)
      : std::runtime_error(message), consumed_(consumed) {}
  std::size_t consumed() const noexcept { return consumed_; }

 private:
  std::size_t consumed_;
};

}  // namespace duet
