// Runs a measurement in a forked child, so that resident-memory growth is
// not hidden by memory an earlier measurement freed (the allocator keeps
// it, and reuses it without the RSS growing).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace bench {

template <class F>
void in_fresh_process(F measure) {
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    measure();
    std::fflush(stdout);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) std::abort();
}

}  // namespace bench
