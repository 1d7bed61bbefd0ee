#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "hearth/cli/arguments.hpp"
#include "hearth/cli/commands.hpp"
#include "hearth/cli/console.hpp"

int main(int argc, char** argv) {
  auto parsed = hearth::cli::parse_arguments(std::vector<std::string>(argv + 1, argv + argc),
                                             hearth::cli::Environment::from_process());
  if (!parsed.invocation) {
    (parsed.exit_code == hearth::cli::kExitOk ? std::cout : std::cerr) << parsed.message;
    return parsed.exit_code;
  }
  auto console = hearth::cli::Console::standard();
  try {
    return hearth::cli::run(*parsed.invocation, console);
  } catch (const std::exception& e) {
    std::cerr << "hearth: " << e.what() << "\n";
    return hearth::cli::kExitServer;
  }
}
