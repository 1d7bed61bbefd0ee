#pragma once

// The codec of the client channel: one Message <-> one ZeroMQ message of one frame (a header) or
// two (a header and a data frame, for upload and part), as protocol/PROTOCOL.md specifies.
// RapidJSON stays out of this header.

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "hearth/protocol/client_messages.hpp"
#include "hearth/protocol/result.hpp"

namespace hearth::protocol::client {

// The frames of one encoded message: header, then data for Upload and Part.
struct Frames {
  std::string header;
  std::optional<std::string> data;
  bool operator==(const Frames&) const = default;
};

// Encodes `message` ({"v":1,"type":...,"body":{...}}); optional fields that are nullopt are left
// out. Invalid UTF-8 in strings is replaced by U+FFFD. Does not enforce size limits (the sender
// splits or refuses). Throws std::invalid_argument when a *_json field does not hold exactly one
// JSON value (a bug in the caller).
Frames encode(const Message& message);

// Decodes one message strictly (see PROTOCOL.md): header of at most kMaxHeaderBytes, data frame
// present exactly for upload and part and at most kMaxPartBytes. Never throws. On failure the
// Error has code "bad_frame" and says what is wrong ("call: missing field 'path'"); when the
// header was an object with a readable integer body.id, that id is put in `id_hint` so the
// receiver can answer the request with an error carrying its id.
struct DecodeError {
  Error error;
  std::optional<int64_t> id_hint;
};
std::variant<Message, DecodeError> decode(std::string_view header,
                                          std::optional<std::string_view> data);

// Splits an encoded header frame larger than kMaxPartBytes into Part messages with `ref`
// (a header of at most kMaxPartBytes comes back as an empty vector: send it whole).
std::vector<Part> split(std::string_view header, int64_t ref);

// Reassembles Parts into one header frame. Feed the parts in order; returns the header once the
// last part arrived. Errors ("bad_frame"): a part out of order or of another ref before the run
// finished, or a run beyond `max_bytes`; the run is then dropped.
class PartAssembler {
 public:
  explicit PartAssembler(std::size_t max_bytes = 64u << 20) : max_bytes_(max_bytes) {}
  Result<std::optional<std::string>> feed(const Part& part);
  void reset();

 private:
  std::size_t max_bytes_;
  std::optional<int64_t> ref_;
  int64_t next_index_ = 0;
  std::string buffer_;
};

}  // namespace hearth::protocol::client
