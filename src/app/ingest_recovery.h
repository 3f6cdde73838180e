#pragma once
/// Start-up checks of what a crash may have left half-done in storage/ and the index, run
/// before any listener opens.

#include "core/result.h"
#include "index/index.h"
#include "storage/store.h"

namespace gw::app {

/// Instances committed unflushed whose flush was never confirmed (ADR 012): after a power loss
/// the row may be on disk while its file is not, or only partly. Each one's file is read back
/// and checked against the row's size and digest; a missing or different file means its sender
/// never heard "success" (that waits for the flush), so the row (with its queue entries) and
/// the file are removed and the sender's resend stores it again. The other rows stay.
core::Status recover_unconfirmed(storage::Store& store, index::Index& index);

/// After a run that did not end cleanly: files renamed into storage/ that no index row names
/// (the process died before the commit; their senders never heard "success") are removed.
core::Status remove_unreferenced_files(storage::Store& store, index::Index& index);

}  // namespace gw::app
