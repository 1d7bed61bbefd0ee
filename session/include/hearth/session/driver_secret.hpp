#pragma once

// How the server remembers a driver's secret without keeping it: the SHA-256 of the secret is
// stored in the driver's record (DriverRecord::secret_sha256), and a hello is verified against
// that digest. A restarted server can therefore verify a reconnecting driver from Redis alone,
// while whoever reads Redis learns nothing that lets them pose as the driver.

#include <string>
#include <string_view>

namespace hearth::session {

// The SHA-256 of secret as 64 lowercase hex digits.
std::string secret_digest(std::string_view secret);

// True when secret_digest(secret) equals digest_hex. The comparison takes the same time
// wherever the digests differ, so timing does not tell a guesser how close it came. A
// digest_hex that is not 64 lowercase hex digits matches nothing.
bool secret_matches(std::string_view digest_hex, std::string_view secret);

}  // namespace hearth::session
