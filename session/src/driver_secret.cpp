#include "hearth/session/driver_secret.hpp"

#include <array>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace hearth::session {

// A plain SHA-256, no salt and no slow password hash: a driver secret is 256 random bits (not
// something a person chose), so there is no dictionary to precompute and brute force over 2^256
// candidates is out of reach whatever the hash costs. A salt or a slow hash would add nothing
// but work on every hello.
std::string secret_digest(std::string_view secret) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(secret.data(), secret.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    // Only an OpenSSL without SHA-256 (a broken installation) gets here.
    throw std::runtime_error("OpenSSL cannot compute SHA-256");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

bool secret_matches(std::string_view digest_hex, std::string_view secret) {
  const std::string expected = secret_digest(secret);
  // The length is public (always 64), so leaving early on a wrong length leaks nothing.
  if (digest_hex.size() != expected.size()) return false;
  return CRYPTO_memcmp(digest_hex.data(), expected.data(), expected.size()) == 0;
}

}  // namespace hearth::session
