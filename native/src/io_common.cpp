// The socket operations that are the same on every platform; the rest are
// in io.cpp (readiness, POSIX) and io_iocp.cpp (completion, Windows).
#include <string>

#include "duet/errors.hpp"
#include "duet/native/io.hpp"
#include "sys_socket.hpp"

namespace duet::native {

void sys::check_open(const Socket& socket, const char* op) {
  if (!socket.is_open())
    duet::throw_os_error(std::make_error_code(std::errc::bad_file_descriptor), std::string(op) + " on a closed socket");
}

Coro<std::string> sock_recv(Socket& socket, std::size_t max_bytes) {
  std::string data(max_bytes, '\0');
  const std::size_t n = co_await sock_recv_into(socket, std::span<char>(data.data(), data.size()));
  data.resize(n);
  co_return data;
}

}  // namespace duet::native
