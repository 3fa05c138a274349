// Counts this process's open fds (/proc/self/fd), to check that a test
// closes every fd it opened. On Windows: the process's handle count (which
// Wine does not keep: there it is always 0, and the tests' leak check is
// overlapped_operations_in_flight() instead).
#pragma once

#ifdef _WIN32
// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on
#else
#include <dirent.h>
#endif

#include <cstddef>

namespace duet::test {

inline std::size_t open_fd_count() {
#ifdef _WIN32
  DWORD count = 0;
  ::GetProcessHandleCount(::GetCurrentProcess(), &count);
  return count;
#else
  std::size_t count = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (const dirent* entry = ::readdir(dir))
      if (entry->d_name[0] != '.') ++count;
    ::closedir(dir);
  }
  return count;
#endif
}

}  // namespace duet::test
