#include "audit/writer.h"

#include "core/log.h"

namespace gw::audit {

namespace {

std::shared_ptr<spdlog::logger> log() { return core::logger("audit"); }

}  // namespace

AuditWriter::AuditWriter(index::Index& index, std::size_t capacity)
    : index_(index), capacity_(capacity == 0 ? 1 : capacity), thread_([this] { run(); }) {}

AuditWriter::~AuditWriter() { stop(); }

bool AuditWriter::enqueue(index::AuditEvent event) {
  bool queued = false;
  bool warn = false;
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && queue_.size() < capacity_) {
      queue_.push_back(std::move(event));
      ++accepted_;
      overflowing_ = false;
      queued = true;
    } else {
      ++dropped_;
      warn = !overflowing_ && !stopping_;
      overflowing_ = true;
    }
  }
  if (queued) {
    wake_.notify_one();
    return true;
  }
  if (warn) {
    log()->warn(
        "event=audit_dropped action={} reason=\"audit queue full ({} rows): the index is not "
        "keeping up; dropped rows are counted in dicom_gw_audit_dropped_total\"",
        event.action, capacity_);
  }
  return false;
}

void AuditWriter::flush() {
  std::unique_lock lock(mu_);
  const auto target = accepted_;
  done_cv_.wait(lock, [&] { return done_ >= target || finished_; });
}

void AuditWriter::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  std::lock_guard join_lock(join_mu_);
  if (thread_.joinable()) thread_.join();
}

WriterCounts AuditWriter::counts() const {
  WriterCounts c;
  c.written = written_;
  c.dropped = dropped_;
  c.failed = failed_;
  std::lock_guard lock(mu_);
  c.queued = queue_.size();
  return c;
}

void AuditWriter::on_written(std::function<void()> hook) {
  std::lock_guard lock(mu_);
  on_written_ = std::move(hook);
}

void AuditWriter::run() {
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {  // stopping, and everything is written
      finished_ = true;
      done_cv_.notify_all();
      return;
    }
    index::AuditEvent event = std::move(queue_.front());
    queue_.pop_front();
    const auto hook = on_written_;
    lock.unlock();
    // The only blocking call, outside the lock: enqueue() never waits for it.
    auto id = index_.append_audit(event);
    if (id.ok()) {
      ++written_;
      if (hook) hook();
    } else {
      ++failed_;
      log()->error("event=audit_failed action={} reason=\"{}\"", event.action, id.error().message);
    }
    lock.lock();
    ++done_;
    done_cv_.notify_all();
  }
}

}  // namespace gw::audit
