#include <iostream>
#include <string>
#include <vector>

#include "hearth/server/config.hpp"
#include "hearth/server/server.hpp"

int main(int argc, char** argv) {
  hearth::server::block_shutdown_signals();
  auto config = hearth::server::ServerConfig::parse(std::vector<std::string>(argv + 1, argv + argc));
  if (!config) {
    std::cerr << "hearth-server: " << config.error().message << "\n";
    return 2;
  }
  if (config->help()) {
    std::cout << hearth::server::help_text();
    return 0;
  }
  try {
    return hearth::server::run(*config);
  } catch (const std::exception& e) {
    std::cerr << "hearth-server: " << e.what() << "\n";
    return 1;
  }
}
