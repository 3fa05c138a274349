#include "duet/native/executor.hpp"

#include <algorithm>

#include "duet/errors.hpp"

namespace duet::native {

ThreadPoolExecutor::ThreadPoolExecutor(std::size_t max_workers)
    : max_workers_(max_workers ? max_workers : std::min<std::size_t>(32, std::thread::hardware_concurrency() + 4)) {}

ThreadPoolExecutor::~ThreadPoolExecutor() {
  shutdown(true);
}

void ThreadPoolExecutor::submit_job(std::unique_ptr<Job> job) {
  std::unique_lock lock(mutex_);
  if (shut_down_) throw RuntimeError("cannot schedule new futures after shutdown");
  jobs_.push_back(std::move(job));
  // A new worker when the queued jobs outnumber the idle workers and there
  // is room (concurrent.futures starts threads on demand, each submit
  // taking one idle token): two quick submits must not queue behind one
  // idle worker while the pool may grow.
  if (jobs_.size() > idle_ && workers_.size() < max_workers_) {
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
  lock.unlock();
  ready_.notify_one();
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
      // Queued jobs never start (cancel_futures): each is told, so that
      // whoever waits for it is not left waiting; running ones finish, and
      // the destructor joins their threads.
      for (std::unique_ptr<Job>& job : jobs_) job->cancel();
      jobs_.clear();
    } else {
      workers.swap(workers_);
    }
  }
  ready_.notify_all();
  for (std::thread& t : workers) t.join();
}

namespace detail {

void JobFutures::adopt(std::unique_ptr<JobFutureBase> job) noexcept {
  JobFutureBase* node = job.release();
  node->prev = nullptr;
  node->next = head_;
  if (head_) head_->prev = node;
  head_ = node;
}

void JobFutures::unlink(JobFutureBase* job) noexcept {
  if (job->prev)
    job->prev->next = job->next;
  else
    head_ = job->next;
  if (job->next) job->next->prev = job->prev;
  job->prev = job->next = nullptr;
}

void JobFutures::shutdown() noexcept {
  while (JobFutureBase* job = head_) {
    unlink(job);
    delete job;
  }
}

}  // namespace detail

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

ThreadPoolExecutor& default_executor(Loop& loop) {
  return loop.use_service<DefaultExecutorService>().executor;
}

ThreadPoolExecutor* find_default_executor(Loop& loop) noexcept {
  auto* service = loop.find_service<DefaultExecutorService>();
  return service ? &service->executor : nullptr;
}

void shutdown_default_executor(Loop& loop) {
  auto* service = loop.find_service<DefaultExecutorService>();
  if (!service || loop.is_closed()) return;
  if (loop.is_running()) throw RuntimeError("shutdown_default_executor: the loop is running");
  // As asyncio 3.11: a helper thread joins the workers while the loop runs,
  // so that the jobs' results (and anything else they post) are delivered,
  // then wakes the loop.
  Future<void> joined(loop);
  std::thread joiner([&loop, &joined, service] {
    service->executor.shutdown(true);
    loop.call_soon_threadsafe([&joined] { joined.set_result(); });
  });
  try {
    loop.run_until_complete(joined);
  } catch (...) {
    joiner.join();
    throw;
  }
  joiner.join();
}

}  // namespace duet::native
