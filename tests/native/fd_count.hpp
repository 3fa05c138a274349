// Counts this process's open fds (/proc/self/fd), to check that a test
// closes every fd it opened.
#pragma once

#include <dirent.h>

#include <cstddef>

namespace duet::test {

inline std::size_t open_fd_count() {
  std::size_t count = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (const dirent* entry = ::readdir(dir))
      if (entry->d_name[0] != '.') ++count;
    ::closedir(dir);
  }
  return count;
}

}  // namespace duet::test
