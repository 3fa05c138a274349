#include "duet/native/executor.hpp"

#include <algorithm>

#include "duet/errors.hpp"

namespace duet::native {

ThreadPoolExecutor::ThreadPoolExecutor(std::size_t max_workers)
    : max_workers_(max_workers ? max_workers : std::min<std::size_t>(32, std::thread::hardware_concurrency() + 4)) {}

ThreadPoolExecutor::~ThreadPoolExecutor() { shutdown(true); }

void ThreadPoolExecutor::submit_job(std::unique_ptr<Job> job) {
  std::unique_lock lock(mutex_);
  if (shut_down_) throw RuntimeError("cannot schedule new futures after shutdown");
  jobs_.push_back(std::move(job));
  if (idle_ > 0 || workers_.size() >= max_workers_) {
    lock.unlock();
    ready_.notify_one();
    return;
  }
  // No idle worker and room for one more: start it (as concurrent.futures
  // does, threads are made on demand, not up front).
  try {
    workers_.emplace_back([this] { work(); });
  } catch (...) {
    if (workers_.empty()) {
      jobs_.pop_back();
      throw;
    }
    // The existing workers will get to it.
  }
}

void ThreadPoolExecutor::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_;
    ready_.wait(lock, [this] { return !jobs_.empty() || shut_down_; });
    --idle_;
    if (jobs_.empty()) return;  // shut down and drained
    std::unique_ptr<Job> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job->run();  // a job catches its own exceptions
    job.reset();
    lock.lock();
  }
}

void ThreadPoolExecutor::shutdown(bool wait) {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mutex_);
    shut_down_ = true;
    if (!wait) {
      // Queued jobs never start (cancel_futures); running ones finish, and
      // the destructor joins their threads.
      jobs_.clear();
    } else {
      workers.swap(workers_);
    }
  }
  ready_.notify_all();
  for (std::thread& t : workers) t.join();
}

namespace {

class DefaultExecutorService final : public LoopService {
 public:
  explicit DefaultExecutorService(Loop&) {}
  // The loop is closing: results can no longer be delivered, but the
  // workers are still joined, so that no thread outlives the loop.
  void shutdown() noexcept override { executor.shutdown(true); }
  ThreadPoolExecutor executor;
};

}  // namespace

ThreadPoolExecutor& default_executor(Loop& loop) { return loop.use_service<DefaultExecutorService>().executor; }

void shutdown_default_executor(Loop& loop) {
  auto* service = loop.find_service<DefaultExecutorService>();
  if (!service) return;
  service->executor.shutdown(true);
  // The workers posted their results before exiting: deliver them.
  if (!loop.is_closed() && !loop.is_running()) {
    loop.stop();
    loop.run_forever();
  }
}

}  // namespace duet::native
