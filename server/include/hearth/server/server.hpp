#pragma once

#include "hearth/server/config.hpp"

namespace hearth::server {

// Runs hearth-server until SIGINT or SIGTERM: starts the embedded redis-server (unless --redis is
// given), the driver channel and the REST API, prints one line
// `hearth-server listening on http://HOST:PORT` once it accepts requests, and on a signal stops
// every driver and the embedded Redis. The caller must have blocked SIGINT and SIGTERM in every
// thread (block_shutdown_signals) before calling. Throws std::runtime_error on start-up errors.
int run(const ServerConfig& config);

// Blocks SIGINT/SIGTERM in the calling thread (and the threads it starts later), so run() can
// wait for them with sigwait.
void block_shutdown_signals();

}  // namespace hearth::server
