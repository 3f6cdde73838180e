#pragma once
/// What a configuration reload (SIGHUP, POST /api/v1/config/reload) cannot apply.

#include <string>
#include <vector>

#include "config/config.h"

namespace gw::app {

/// The configuration keys that differ between `running` and `fresh` but only a restart applies
/// (a reload keeps their running values and reports them as needs_restart): ae_title, data_dir,
/// node_id, listeners, database (url, password_file, pool_size; the encryption keys do reload),
/// storage, audit, http (except the HTTPS certificate files), acme, logging.
std::vector<std::string> restart_only_changes(const config::Config& running,
                                              const config::Config& fresh);

}  // namespace gw::app
