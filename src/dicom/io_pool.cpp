#include "dicom/io_pool.h"

#include "core/check.h"

namespace gw::dicom {

IoPool::IoPool(std::size_t threads) {
  GW_CHECK(threads >= 1);
  for (std::size_t i = 0; i < threads; ++i) {
    // Concurrency hint 1: only this pool's thread runs the context (other threads still post to
    // it, e.g. the worker pool resuming an association, so it keeps its locks).
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(asio::make_work_guard(*contexts_.back()));
  }
}

IoPool::~IoPool() { stop(); }

void IoPool::start() {
  if (!threads_.empty()) return;
  for (auto& context : contexts_) {
    threads_.emplace_back([io = context.get()]() { io->run(); });
  }
}

void IoPool::stop() {
  guards_.clear();
  for (auto& context : contexts_) context->stop();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

asio::any_io_executor IoPool::next() {
  const auto i = next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size();
  return contexts_[i]->get_executor();
}

}  // namespace gw::dicom
