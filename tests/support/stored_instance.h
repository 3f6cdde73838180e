#pragma once
/// A stored file made through a real Store (spool, digest, publish) and the index record that
/// names it, not yet inserted: each test inserts it its own way (flushed, unflushed, …).
/// Header-only: for tests that link gw_storage and gw_index.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "index/index.h"
#include "storage/store.h"

namespace gw::test {

/// `n` bytes of a pattern that depends on `sop`, published in `store`; the record has the SOP
/// Instance UID, series "2.1", study "3.1", size, digest and storage path.
inline index::InstanceRecord publish_test_file(storage::Store& store, const std::string& sop,
                                               std::size_t n) {
  index::InstanceRecord r;
  auto spool = store.begin();
  EXPECT_TRUE(spool.ok());
  if (!spool.ok()) return r;
  std::vector<std::uint8_t> bytes(n);
  for (std::size_t i = 0; i < n; ++i) bytes[i] = static_cast<std::uint8_t>(i * 7 + sop.size());
  EXPECT_TRUE(spool->write(bytes).ok());
  r.sop_instance_uid = sop;
  r.series_instance_uid = "2.1";
  r.study_instance_uid = "3.1";
  r.size_bytes = static_cast<std::int64_t>(spool->size());
  r.digest = spool->digest();
  auto published = store.publish(std::move(*spool));
  EXPECT_TRUE(published.ok());
  if (published.ok()) r.storage_path = published->path;
  return r;
}

}  // namespace gw::test
