#include "duet/errors.hpp"

#include <cerrno>

namespace duet {
namespace {

template <class E>
std::exception_ptr make(std::error_code code, const std::string& what) {
  return std::make_exception_ptr(E(code, what));
}

}  // namespace

std::exception_ptr make_os_error(std::error_code code, const std::string& what) {
  // Python's errno -> OSError subclass table (Objects/exceptions.c), for
  // the codes a socket program meets.
  if (code == std::errc::connection_refused) return make<ConnectionRefusedError>(code, what);
  if (code == std::errc::connection_reset) return make<ConnectionResetError>(code, what);
  if (code == std::errc::connection_aborted) return make<ConnectionAbortedError>(code, what);
  if (code == std::errc::broken_pipe) return make<BrokenPipeError>(code, what);
  return make<OSError>(code, what);
}

void throw_os_error(std::error_code code, const std::string& what) {
  std::rethrow_exception(make_os_error(code, what));
}

void throw_errno(const std::string& what) {
  throw_os_error(std::error_code(errno, std::generic_category()), what);
}

}  // namespace duet
