#pragma once
/// Start-up checks of what a crash may have left half-done in storage/ and the index, run
/// before any listener opens.

#include "core/result.h"
#include "index/index.h"
#include "storage/store.h"

namespace gw::app {

/// Instances committed unflushed whose flush was never confirmed (ADR 012): after a power loss
/// the row may be on disk while its file is not, or only partly. The file system is flushed
/// (syncfs), then each one's file is read back from the disk and checked against the row's
/// size and digest. A missing or different file means its sender never heard "success" (that
/// waits for the flush; markers confirmed but not yet cleared read back intact), so the row
/// (with its queue rows) and the file are removed and the sender's resend stores it again. The
/// other rows stay. A file that cannot be read for another reason (permissions, an I/O error) stops
/// the start with that error: it proves nothing about the file, and the row may be an acknowledged
/// instance's.
core::Status recover_unconfirmed(storage::Store& store, index::Index& index);

/// After a run that did not end cleanly: files renamed into storage/ that no index row names
/// (the process died before the commit; their senders never heard "success") are removed.
core::Status remove_unreferenced_files(storage::Store& store, index::Index& index);

}  // namespace gw::app
