// Rendering of types and exceptions for error reports.
#include "duet/exception_context.hpp"

#include <cstdlib>
#include <memory>
#include <typeinfo>

#include "duet/detail/callback.hpp"
#include "duet/errors.hpp"

#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#define DUET_HAVE_CXXABI 1
#endif

namespace duet::detail {

std::string type_name(const std::type_info& type) {
#ifdef DUET_HAVE_CXXABI
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status),
                                                   std::free);
  if (status == 0 && demangled) return demangled.get();
#endif
  return type.name();
}

}  // namespace duet::detail

namespace duet {

std::string describe_exception(const std::exception_ptr& exception) {
  if (!exception) return "no exception";
  try {
    std::rethrow_exception(exception);
  } catch (const CancelledError& e) {
    return e.message().empty() ? std::string("duet::CancelledError") : "duet::CancelledError: " + e.message();
  } catch (const std::exception& e) {
    return detail::type_name(typeid(e)) + ": " + e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

}  // namespace duet
