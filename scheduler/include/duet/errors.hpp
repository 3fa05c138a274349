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

}  // namespace duet
