// duet/exception_context.hpp — what the loop's exception handler receives
// (asyncio's `context` dict of call_exception_handler, as a struct).
#pragma once

#include <exception>
#include <functional>
#include <string>

namespace duet {

class Loop;

struct ExceptionContext {
  /// What went wrong, e.g. "Exception in callback <Handle main()::lambda>".
  std::string message;
  /// The exception, when there is one.
  std::exception_ptr exception;
  /// Description of the handle whose callback failed, when there is one.
  std::string handle;
  /// When the custom handler itself threw: the context it was handling.
  const ExceptionContext* original = nullptr;
};

/// A custom exception handler (asyncio's loop.set_exception_handler). If it
/// throws, the loop reports both errors with the default handler instead.
using ExceptionHandler = std::function<void(Loop&, const ExceptionContext&)>;

/// Renders an exception_ptr's type and what() for logs.
std::string describe_exception(const std::exception_ptr& exception);

}  // namespace duet
