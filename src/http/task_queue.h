#pragma once
/// ElasticTaskQueue: the HTTP server's worker threads. cpp-httplib runs each connection on one
/// thread from reading the request line to the last response, and 0.11 has no deadline for a
/// whole request: a client that sends a header byte every few seconds holds a thread as long as
/// it likes. With a fixed pool of 4, four such clients silence /health and the login. This
/// queue keeps `min_threads` and starts another thread whenever a connection arrives and none
/// is idle, up to `max_threads`; a thread idle for `idle_exit` goes away again (above
/// `min_threads`). Slow clients then cost a thread each, not the service.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

namespace gw::http {

class ElasticTaskQueue {
 public:
  ElasticTaskQueue(std::size_t min_threads, std::size_t max_threads,
                   std::chrono::milliseconds idle_exit);
  ~ElasticTaskQueue();
  ElasticTaskQueue(const ElasticTaskQueue&) = delete;
  ElasticTaskQueue& operator=(const ElasticTaskQueue&) = delete;

  /// Runs `task` on an idle thread, a new one, or (all `max_threads` busy) the first that frees.
  void enqueue(std::function<void()> task);
  /// Lets queued and running tasks finish, then joins every thread. Idempotent.
  void shutdown();
  /// Threads alive now (for tests and status).
  std::size_t threads() const;

 private:
  struct Worker {
    std::thread thread;
    bool done = false;  ///< the thread has left its loop; join it
  };
  void run(Worker* self);
  void reap_locked(std::list<Worker>& finished);

  const std::size_t min_threads_;
  const std::size_t max_threads_;
  const std::chrono::milliseconds idle_exit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::list<Worker> workers_;
  std::size_t alive_ = 0;
  std::size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace gw::http
