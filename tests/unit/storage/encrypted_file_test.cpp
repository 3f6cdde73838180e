#include "storage/encrypted_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "crypto/keyring.h"
#include "storage/content_digest.h"
#include "storage/store.h"
#include "support/temp_dir.h"

namespace gw::storage {
namespace {

namespace fs = std::filesystem;
using core::ErrorCode;

constexpr std::size_t kSeg = kSegmentSize;
constexpr std::size_t kFull = kSegmentSize + kSegmentTagSize;

crypto::MasterKey key(const std::string& secret, std::uint32_t version) {
  auto k = crypto::MasterKey::from_secret(secret);
  EXPECT_TRUE(k.ok());
  crypto::MasterKey out = std::move(k).value();
  out.version = version;
  return out;
}

const std::string kSecretA = "test-key-A-0123456789abcdefghijklmnopqrstuvwx";
const std::string kSecretB = "test-key-B-0123456789abcdefghijklmnopqrstuvwx";
const std::string kSecretC = "test-key-C-0123456789abcdefghijklmnopqrstuvwx";

crypto::Keyring ring(std::optional<crypto::MasterKey> current,
                     std::optional<crypto::MasterKey> previous = std::nullopt) {
  crypto::Keyring r;
  r.current = std::move(current);
  r.previous = std::move(previous);
  return r;
}

std::vector<std::uint8_t> make_bytes(std::size_t n, std::uint32_t seed) {
  std::vector<std::uint8_t> out(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::uint8_t>(x);
  }
  return out;
}

std::vector<std::uint8_t> read_raw(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_raw(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

/// Encrypts `plain` into `path`, fed in uneven pieces (1 byte, then growing).
void encrypt_to(const fs::path& path, const std::vector<std::uint8_t>& plain,
                const crypto::Keyring& keys) {
  core::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid());
  auto writer = EncryptedFileWriter::create(fd.get(), path, keys);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  std::size_t pos = 0;
  std::size_t piece = 1;
  while (pos < plain.size()) {
    const std::size_t n = std::min(piece, plain.size() - pos);
    ASSERT_TRUE(writer->write({plain.data() + pos, n}).ok());
    pos += n;
    piece = piece * 3 + 7;
  }
  ASSERT_TRUE(writer->finish().ok());
  ASSERT_TRUE(writer->finished());
  EXPECT_EQ(writer->bytes_written(), fs::file_size(path));
}

core::Result<std::unique_ptr<EncryptedFileReader>> open_reader(const fs::path& path,
                                                               const crypto::Keyring& keys) {
  core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(fd.valid());
  return EncryptedFileReader::open(std::move(fd), path, keys);
}

core::Result<std::vector<std::uint8_t>> read_all(ContentReader& r) {
  std::vector<std::uint8_t> out(r.size());
  GW_ASSIGN_OR_RETURN(const std::size_t n, r.read(0, out));
  EXPECT_EQ(n, out.size());
  return out;
}

std::uint64_t expected_file_size(std::uint64_t plain) {
  if (plain == 0) return kEncryptedHeaderSize + kSegmentTagSize;
  const std::uint64_t segments = (plain + kSeg - 1) / kSeg;
  return kEncryptedHeaderSize + plain + segments * kSegmentTagSize;
}

class EncryptedFileTest : public ::testing::Test {
 protected:
  fs::path file(const std::string& name = "f.enc") const { return dir_.path() / name; }
  crypto::Keyring keys_a_ = ring(key(kSecretA, 1));
  test::TempDir dir_{"gw-encrypted-file-test"};
};

TEST_F(EncryptedFileTest, RoundTripsEverySizeAroundSegmentBoundaries) {
  const std::vector<std::size_t> sizes = {0, 1, kSeg - 1, kSeg, kSeg + 1, 3u << 20};
  for (const std::size_t size : sizes) {
    SCOPED_TRACE("size " + std::to_string(size));
    const auto plain = make_bytes(size, static_cast<std::uint32_t>(size));
    encrypt_to(file(), plain, keys_a_);
    EXPECT_EQ(fs::file_size(file()), expected_file_size(size));
    const auto raw = read_raw(file());
    EXPECT_TRUE(is_encrypted(raw));
    if (size >= 64) {  // no 64-byte run of the plaintext is on disk
      EXPECT_EQ(std::search(raw.begin(), raw.end(), plain.begin(), plain.begin() + 64), raw.end());
    }
    auto reader = open_reader(file(), keys_a_);
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    EXPECT_EQ((*reader)->size(), size);
    EXPECT_EQ((*reader)->slot_versions(), (std::array<std::uint32_t, 2>{1, 0}));
    auto all = read_all(**reader);
    ASSERT_TRUE(all.ok()) << all.error().message;
    EXPECT_TRUE(*all == plain);
  }
}

TEST_F(EncryptedFileTest, TwoFilesOfTheSameContentDiffer) {
  const auto plain = make_bytes(1000, 7);
  encrypt_to(file("a"), plain, keys_a_);
  encrypt_to(file("b"), plain, keys_a_);
  EXPECT_NE(read_raw(file("a")), read_raw(file("b")));  // fresh data key and nonce prefix
}

TEST_F(EncryptedFileTest, RandomAccessReadsAcrossSegmentBoundaries) {
  const auto plain = make_bytes(3 * kSeg + 1234, 3);
  encrypt_to(file(), plain, keys_a_);
  auto reader = open_reader(file(), keys_a_);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  struct Case {
    std::uint64_t offset;
    std::size_t length;
  };
  const std::vector<Case> cases = {{0, 10},
                                   {kSeg - 1, 2},
                                   {kSeg - 5, kSeg + 10},
                                   {2 * kSeg, 1},
                                   {kSeg + 7, 3 * kSeg},
                                   {3 * kSeg + 1230, 4},
                                   {3 * kSeg - 3, 6},
                                   {100, 0},
                                   {0, plain.size()}};
  for (const auto& c : cases) {
    SCOPED_TRACE("offset " + std::to_string(c.offset) + " length " + std::to_string(c.length));
    std::vector<std::uint8_t> out(c.length, 0xEE);
    auto n = (*reader)->read(c.offset, out);
    ASSERT_TRUE(n.ok()) << n.error().message;
    const std::size_t expect = std::min<std::uint64_t>(c.length, plain.size() - c.offset);
    ASSERT_EQ(*n, expect);
    EXPECT_TRUE(std::equal(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(expect),
                           plain.begin() + static_cast<std::ptrdiff_t>(c.offset)));
  }
  // Past the end: short, then nothing.
  std::vector<std::uint8_t> out(100);
  auto tail = (*reader)->read(plain.size() - 10, out);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, 10u);
  auto past = (*reader)->read(plain.size() + 5, out);
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(*past, 0u);
}

/// Flips one bit of byte `at` in the file.
void flip(const fs::path& path, std::size_t at) {
  auto raw = read_raw(path);
  ASSERT_LT(at, raw.size());
  raw[at] ^= 0x01;
  write_raw(path, raw);
}

TEST_F(EncryptedFileTest, AFlippedByteInTheHeaderIsDetected) {
  const auto plain = make_bytes(kSeg + 100, 5);
  encrypt_to(file("orig"), plain, keys_a_);
  // The immutable part and the used slot 0: the file no longer opens.
  for (std::size_t at = 0; at < 88; ++at) {
    SCOPED_TRACE("byte " + std::to_string(at));
    fs::copy_file(file("orig"), file(), fs::copy_options::overwrite_existing);
    flip(file(), at);
    auto reader = open_reader(file(), keys_a_);
    ASSERT_FALSE(reader.ok());
    if (at >= 24 && at < 27) {
      // Slot 0's key version: the file now names a key nobody has.
      EXPECT_EQ(reader.error().code, ErrorCode::kConfig) << reader.error().message;
    } else if (at >= 8) {  // (byte 27: version 1 -> 0, no slot in use)
      EXPECT_EQ(reader.error().code, ErrorCode::kDataLoss) << reader.error().message;
      EXPECT_NE(reader.error().message.find("stored file is corrupt or was altered"),
                std::string::npos);
    }
  }
  // The empty slot 1 holds nothing the file needs.
  fs::copy_file(file("orig"), file(), fs::copy_options::overwrite_existing);
  flip(file(), 100);
  auto reader = open_reader(file(), keys_a_);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  EXPECT_TRUE(*read_all(**reader) == plain);
}

TEST_F(EncryptedFileTest, AFlippedByteInAnySegmentOrTagFailsBeforeHandingOutBytes) {
  const auto plain = make_bytes(2 * kSeg + 500, 6);
  encrypt_to(file("orig"), plain, keys_a_);
  const std::size_t h = kEncryptedHeaderSize;
  struct Case {
    std::size_t at;
    int segment;
  };
  const std::vector<Case> cases = {{h, 0},
                                   {h + 1000, 0},
                                   {h + kSeg - 1, 0},
                                   {h + kSeg, 0},  // tag
                                   {h + kFull - 1, 0},
                                   {h + kFull, 1},
                                   {h + kFull + kSeg + 3, 1},
                                   {h + 2 * kFull, 2},
                                   {h + 2 * kFull + 499, 2},
                                   {h + 2 * kFull + 500 + 15, 2}};
  for (const auto& c : cases) {
    SCOPED_TRACE("byte " + std::to_string(c.at));
    fs::copy_file(file("orig"), file(), fs::copy_options::overwrite_existing);
    flip(file(), c.at);
    const std::string message = "stored file is corrupt or was altered: segment " +
                                std::to_string(c.segment) + " failed authentication";
    auto reader = open_reader(file(), keys_a_);
    if (c.segment == 2) {  // the last segment is checked when the file is opened
      ASSERT_FALSE(reader.ok());
      EXPECT_EQ(reader.error().code, ErrorCode::kDataLoss);
      EXPECT_EQ(reader.error().message, message);
      continue;
    }
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    // Reading the bad segment fails and leaves the caller's buffer as it was.
    std::vector<std::uint8_t> out(kSeg, 0xEE);
    auto n = (*reader)->read(static_cast<std::uint64_t>(c.segment) * kSeg, out);
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.error().code, ErrorCode::kDataLoss);
    EXPECT_EQ(n.error().message, message);
    EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == 0xEE; }));
    // A read that spans the good segment before the bad one fails as a whole, too.
    if (c.segment == 1) {
      std::vector<std::uint8_t> span(kSeg + 10, 0xEE);
      auto m = (*reader)->read(kSeg - 10, span);
      ASSERT_FALSE(m.ok());
    }
    // Other segments still read.
    std::vector<std::uint8_t> good(10);
    auto other = (*reader)->read(c.segment == 0 ? kSeg : 0, good);
    ASSERT_TRUE(other.ok()) << other.error().message;
  }
}

TEST_F(EncryptedFileTest, TruncationAndAppendedBytesAreDetected) {
  const auto plain = make_bytes(2 * kSeg + 300, 8);
  encrypt_to(file("orig"), plain, keys_a_);
  const auto raw = read_raw(file("orig"));
  const std::vector<std::size_t> lengths = {raw.size() - 1,
                                            raw.size() - 16,
                                            raw.size() - 316,  // the whole last segment
                                            raw.size() - 317,
                                            kEncryptedHeaderSize + kFull,  // ends on a full segment
                                            kEncryptedHeaderSize + 15,
                                            kEncryptedHeaderSize,
                                            100,
                                            8};
  for (const std::size_t length : lengths) {
    SCOPED_TRACE("length " + std::to_string(length));
    write_raw(file(), {raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(length)});
    auto reader = open_reader(file(), keys_a_);
    ASSERT_FALSE(reader.ok());
    EXPECT_EQ(reader.error().code, ErrorCode::kDataLoss) << reader.error().message;
  }
  for (const std::size_t extra : {std::size_t{1}, std::size_t{16}, kFull, kFull + 100}) {
    SCOPED_TRACE("appended " + std::to_string(extra));
    auto longer = raw;
    const auto junk = make_bytes(extra, 99);
    longer.insert(longer.end(), junk.begin(), junk.end());
    write_raw(file(), longer);
    auto reader = open_reader(file(), keys_a_);
    ASSERT_FALSE(reader.ok());
    EXPECT_EQ(reader.error().code, ErrorCode::kDataLoss) << reader.error().message;
  }
  // A copy of a real segment appended (a full, well-formed segment from the same file).
  auto doubled = raw;
  doubled.insert(doubled.end(), raw.begin() + kEncryptedHeaderSize,
                 raw.begin() + static_cast<std::ptrdiff_t>(kEncryptedHeaderSize + kFull));
  write_raw(file(), doubled);
  EXPECT_FALSE(open_reader(file(), keys_a_).ok());
}

TEST_F(EncryptedFileTest, SwappedOrRepeatedSegmentsAreDetected) {
  const auto plain = make_bytes(3 * kSeg + 10, 9);
  encrypt_to(file("orig"), plain, keys_a_);
  const auto raw = read_raw(file("orig"));
  auto segment = [&](std::size_t n) {
    const auto start = raw.begin() + static_cast<std::ptrdiff_t>(kEncryptedHeaderSize + n * kFull);
    return std::vector<std::uint8_t>(start, start + static_cast<std::ptrdiff_t>(kFull));
  };
  auto swapped = raw;
  const auto s0 = segment(0);
  const auto s1 = segment(1);
  std::copy(s1.begin(), s1.end(), swapped.begin() + kEncryptedHeaderSize);
  std::copy(s0.begin(), s0.end(), swapped.begin() + kEncryptedHeaderSize + kFull);
  write_raw(file(), swapped);
  auto reader = open_reader(file(), keys_a_);
  ASSERT_TRUE(reader.ok()) << reader.error().message;  // the last segment is in place
  std::vector<std::uint8_t> out(10);
  auto first = (*reader)->read(0, out);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().message,
            "stored file is corrupt or was altered: segment 0 failed authentication");
  EXPECT_FALSE((*reader)->read(kSeg, out).ok());

  auto repeated = raw;
  std::copy(s0.begin(), s0.end(), repeated.begin() + kEncryptedHeaderSize + 2 * kFull);
  write_raw(file(), repeated);
  auto again = open_reader(file(), keys_a_);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)->read(0, out).ok());
  EXPECT_FALSE((*again)->read(2 * kSeg, out).ok());

  // A segment from another file with the same key ring: another data key.
  encrypt_to(file("other"), plain, keys_a_);
  const auto other = read_raw(file("other"));
  auto mixed = raw;
  std::copy(other.begin() + kEncryptedHeaderSize,
            other.begin() + static_cast<std::ptrdiff_t>(kEncryptedHeaderSize + kFull),
            mixed.begin() + kEncryptedHeaderSize);
  write_raw(file(), mixed);
  auto foreign = open_reader(file(), keys_a_);
  ASSERT_TRUE(foreign.ok());
  EXPECT_FALSE((*foreign)->read(0, out).ok());
}

TEST_F(EncryptedFileTest, MissingKeyIsAClearErrorNamingTheVersions) {
  encrypt_to(file(), make_bytes(100, 1), keys_a_);
  auto reader = open_reader(file(), ring(key(kSecretB, 2)));
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.error().code, ErrorCode::kConfig);
  EXPECT_NE(reader.error().message.find("key version 1"), std::string::npos)
      << reader.error().message;
  EXPECT_NE(reader.error().message.find("version 2"), std::string::npos) << reader.error().message;

  // The right version number but another key: the wrap fails authentication.
  auto wrong = open_reader(file(), ring(key(kSecretB, 1)));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kDataLoss) << wrong.error().message;

  auto none = open_content(file(), nullptr);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kConfig);
}

TEST_F(EncryptedFileTest, RewrapMovesTheFileToTheNewKey) {
  const auto plain = make_bytes(kSeg + 77, 10);
  encrypt_to(file(), plain, keys_a_);
  const auto before = read_raw(file());

  // Rotation 1: B current, A previous.
  const auto ab = ring(key(kSecretB, 2), key(kSecretA, 1));
  auto changed = rewrap(file(), ab, /*fsync=*/true);
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  EXPECT_TRUE(*changed);
  auto again = rewrap(file(), ab, true);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);  // nothing left to do
  const auto after = read_raw(file());
  ASSERT_EQ(after.size(), before.size());
  // Only slot 1 changed: segments and the immutable header are untouched.
  EXPECT_TRUE(std::equal(before.begin(), before.begin() + 88, after.begin()));
  EXPECT_TRUE(std::equal(before.begin() + kEncryptedHeaderSize, before.end(),
                         after.begin() + kEncryptedHeaderSize));
  {
    auto reader = open_reader(file(), ring(key(kSecretB, 2)));  // the new key alone
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    EXPECT_EQ((*reader)->slot_versions(), (std::array<std::uint32_t, 2>{1, 2}));
    EXPECT_TRUE(*read_all(**reader) == plain);
  }

  // Rotation 2: C current, B previous: A's slot (the one C does not need) is overwritten.
  const auto cb = ring(key(kSecretC, 3), key(kSecretB, 2));
  changed = rewrap(file(), cb, true);
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  EXPECT_TRUE(*changed);
  {
    auto reader = open_reader(file(), ring(key(kSecretC, 3)));
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    EXPECT_EQ((*reader)->slot_versions(), (std::array<std::uint32_t, 2>{3, 2}));
    EXPECT_TRUE(*read_all(**reader) == plain);
  }
  auto old_only = open_reader(file(), keys_a_);
  ASSERT_FALSE(old_only.ok());
  EXPECT_EQ(old_only.error().code, ErrorCode::kConfig);
  EXPECT_NE(old_only.error().message.find("key version 3 or 2"), std::string::npos)
      << old_only.error().message;

  // A keyring that knows none of the file's keys cannot rewrap it either.
  auto stranger = rewrap(file(), ring(key(kSecretA, 4), key(kSecretA, 1)), true);
  ASSERT_FALSE(stranger.ok());
  EXPECT_EQ(stranger.error().code, ErrorCode::kConfig);

  // Not an encrypted file.
  write_raw(file("plain"), make_bytes(500, 2));
  auto plain_file = rewrap(file("plain"), cb, true);
  ASSERT_FALSE(plain_file.ok());
  EXPECT_EQ(plain_file.error().code, ErrorCode::kInvalidArgument);
}

/// Overwrites key slot `slot`'s wrapped key (not its version) with garbage: a torn write.
void damage_slot(const fs::path& path, int slot) {
  auto raw = read_raw(path);
  const std::size_t at = 24 + static_cast<std::size_t>(slot) * 64 + 4;
  const auto junk = make_bytes(60, 42);
  std::copy(junk.begin(), junk.end(), raw.begin() + static_cast<std::ptrdiff_t>(at));
  write_raw(path, raw);
}

TEST_F(EncryptedFileTest, AFileWithOneGarbageSlotOpensWithTheOther) {
  const auto plain = make_bytes(5000, 11);
  encrypt_to(file("orig"), plain, keys_a_);
  const auto ab = ring(key(kSecretB, 2), key(kSecretA, 1));
  ASSERT_TRUE(*rewrap(file("orig"), ab, false));  // slots {1: A, 2: B}

  // The new slot torn (a crash during the rotation's pwrite): the old key still opens it, and
  // the next rewrap repairs the slot.
  fs::copy_file(file("orig"), file(), fs::copy_options::overwrite_existing);
  damage_slot(file(), 1);
  {
    auto reader = open_reader(file(), ab);
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    EXPECT_TRUE(*read_all(**reader) == plain);
  }
  EXPECT_FALSE(open_reader(file(), ring(key(kSecretB, 2))).ok());
  auto repaired = rewrap(file(), ab, true);
  ASSERT_TRUE(repaired.ok()) << repaired.error().message;
  EXPECT_TRUE(*repaired);
  {
    auto reader = open_reader(file(), ring(key(kSecretB, 2)));
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    EXPECT_TRUE(*read_all(**reader) == plain);
  }

  // The old slot torn: the new key opens it.
  fs::copy_file(file("orig"), file(), fs::copy_options::overwrite_existing);
  damage_slot(file(), 0);
  {
    auto reader = open_reader(file(), ab);
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    EXPECT_TRUE(*read_all(**reader) == plain);
  }

  // Both torn: corrupt, said so.
  damage_slot(file(), 1);
  auto neither = open_reader(file(), ab);
  ASSERT_FALSE(neither.ok());
  EXPECT_EQ(neither.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(neither.error().message.find("key slot"), std::string::npos);
}

TEST_F(EncryptedFileTest, OpenContentReadsPlainAndEncryptedFilesAlike) {
  const auto plain = make_bytes(70000, 12);
  write_raw(file("plain.dcm"), plain);
  encrypt_to(file("enc.dcm"), plain, keys_a_);
  for (const auto* name : {"plain.dcm", "enc.dcm"}) {
    SCOPED_TRACE(name);
    auto reader = open_content(file(name), &keys_a_);
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    EXPECT_EQ((*reader)->size(), plain.size());
    EXPECT_TRUE(*read_all(**reader) == plain);
  }
  auto plain_without_keys = open_content(file("plain.dcm"), nullptr);
  ASSERT_TRUE(plain_without_keys.ok());
  auto missing = open_content(file("missing.dcm"), &keys_a_);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

// ---- the store ----------------------------------------------------------------------------

class EncryptedStoreTest : public EncryptedFileTest {
 protected:
  std::unique_ptr<Store> make_store(bool encrypt, std::shared_ptr<const crypto::Keyring> keys,
                                    const std::string& dir = "data") {
    StoreOptions o;
    o.data_dir = dir_.path() / dir;
    o.fsync = true;
    o.encrypt = encrypt;
    o.keyring = std::move(keys);
    auto store = Store::create(o);
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return std::move(store).value();
  }
};

TEST_F(EncryptedStoreTest, SpoolFilesAreEncryptedAsTheyAreWritten) {
  auto keys = std::make_shared<const crypto::Keyring>(keys_a_);
  auto store = make_store(true, keys);
  const auto plain = make_bytes(200000, 13);
  auto spool = store->begin();
  ASSERT_TRUE(spool.ok()) << spool.error().message;
  for (std::size_t pos = 0; pos < plain.size(); pos += 16384) {
    const std::size_t n = std::min<std::size_t>(16384, plain.size() - pos);
    ASSERT_TRUE(spool->write({plain.data() + pos, n}).ok());
  }
  // Size and digest describe the plaintext.
  EXPECT_EQ(spool->size(), plain.size());
  ContentDigest digest;
  digest.update(plain);
  EXPECT_EQ(spool->digest(), digest.text());
  // What is on disk so far: the header and the whole segments, no plaintext.
  const auto partial = read_raw(spool->path());
  EXPECT_TRUE(is_encrypted(partial));
  EXPECT_EQ(partial.size(), kEncryptedHeaderSize + 3 * kFull);

  // The ingest parses the content before publishing it.
  auto content = spool->content();
  ASSERT_TRUE(content.ok()) << content.error().message;
  EXPECT_TRUE(*read_all(**content) == plain);
  EXPECT_FALSE(spool->write(plain).ok());  // finished

  auto rel = store->commit(std::move(*spool));
  ASSERT_TRUE(rel.ok()) << rel.error().message;
  const auto stored = read_raw(store->absolute(*rel));
  EXPECT_EQ(stored.size(), expected_file_size(plain.size()));
  EXPECT_EQ(std::search(stored.begin(), stored.end(), plain.begin(), plain.begin() + 64),
            stored.end());
  auto reader = store->open_content(store->absolute(*rel));
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  EXPECT_TRUE(*read_all(**reader) == plain);
}

TEST_F(EncryptedStoreTest, CommitWithoutContentFinishesTheLastSegment) {
  auto store = make_store(true, std::make_shared<const crypto::Keyring>(keys_a_));
  for (const std::size_t size : {std::size_t{0}, kSeg, kSeg + 3}) {
    const auto plain = make_bytes(size, 14);
    auto spool = store->begin();
    ASSERT_TRUE(spool.ok());
    ASSERT_TRUE(spool->write(plain).ok());
    auto published = store->publish(std::move(*spool));
    ASSERT_TRUE(published.ok()) << published.error().message;
    ASSERT_TRUE(store->sync_data(*published).ok());
    auto reader = store->open_content(store->absolute(published->path));
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    EXPECT_TRUE(*read_all(**reader) == plain);
  }
}

TEST_F(EncryptedStoreTest, KeysComeLaterAndFilesFromBeforeEncryptionStillRead) {
  // A plain store writes a file; then the same data dir with storage.encrypt on.
  const auto plain = make_bytes(1000, 15);
  std::string plain_rel;
  {
    auto store = make_store(false, nullptr);
    auto spool = store->begin();
    ASSERT_TRUE(spool.ok());
    ASSERT_TRUE(spool->write(plain).ok());
    auto rel = store->commit(std::move(*spool));
    ASSERT_TRUE(rel.ok());
    plain_rel = *rel;
    EXPECT_EQ(read_raw(store->absolute(plain_rel)), plain);
  }
  auto store = make_store(true, nullptr);
  auto no_key = store->begin();
  ASSERT_FALSE(no_key.ok());  // encrypt without a key: refused, nothing left in spool/
  EXPECT_EQ(no_key.error().code, ErrorCode::kConfig);
  EXPECT_TRUE(fs::is_empty(dir_.path() / "data" / "spool"));

  store->set_keyring(std::make_shared<const crypto::Keyring>(keys_a_));
  auto reader = store->open_content(store->absolute(plain_rel));
  ASSERT_TRUE(reader.ok());
  EXPECT_TRUE(*read_all(**reader) == plain);
  auto spool = store->begin();
  ASSERT_TRUE(spool.ok()) << spool.error().message;
  ASSERT_TRUE(spool->write(plain).ok());
  auto rel = store->commit(std::move(*spool));
  ASSERT_TRUE(rel.ok());
  EXPECT_TRUE(is_encrypted(read_raw(store->absolute(*rel))));

  // A reload to a new key: new files use it, older ones read through the previous key.
  store->set_keyring(
      std::make_shared<const crypto::Keyring>(ring(key(kSecretB, 2), key(kSecretA, 1))));
  auto old = store->open_content(store->absolute(*rel));
  ASSERT_TRUE(old.ok()) << old.error().message;
  EXPECT_TRUE(*read_all(**old) == plain);
  auto next = store->begin();
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(next->write(plain).ok());
  auto next_rel = store->commit(std::move(*next));
  ASSERT_TRUE(next_rel.ok());
  auto b_only = open_content(store->absolute(*next_rel),
                             std::make_shared<crypto::Keyring>(ring(key(kSecretB, 2))).get());
  ASSERT_TRUE(b_only.ok()) << b_only.error().message;
}

}  // namespace
}  // namespace gw::storage
