#pragma once

// Running a parsed `hearth` command against the server (through hearth::clients).

#include "hearth/cli/arguments.hpp"
#include "hearth/cli/console.hpp"

namespace hearth::cli {

// Connects to invocation.global.server, runs the command and prints its results to the console
// (tables, text, or the server's JSON with --json; errors on console.err). Returns the process
// exit code (kExit* in arguments.hpp). Blocks until the command is done.
//
// Handles SIGINT/SIGTERM itself for as long as it runs (Ctrl-C cancels the statement or job it
// waits for and deletes a session `exec` created), so call it from main before any other thread
// exists.
int run(const Invocation& invocation, Console& console);

}  // namespace hearth::cli
