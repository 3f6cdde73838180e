#pragma once
/// Logging: one spdlog logger per module ("dicom", "storage", …) writing key=value messages to
/// one shared sink. Never log patient data (names, IDs, birth dates); UIDs and AE titles are fine.
/// Logging never throws into the caller.

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

namespace gw::core {

/// Configures the shared sink and level ("trace".."off"). Safe to call more than once.
void init_logging(std::string_view level = "info");

/// The logger for a module, created on first use.
std::shared_ptr<spdlog::logger> logger(const std::string& module);

/// A peer-supplied value (an AE title) made safe to print inside `key="…"`: `"`, `\` and
/// control or non-ASCII bytes become `\xNN`, so no value can end the quotes or start a line.
std::string log_safe(std::string_view value);

}  // namespace gw::core
