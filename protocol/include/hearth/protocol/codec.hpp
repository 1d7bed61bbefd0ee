#pragma once

// The JSON codec of the driver channel: one Message <-> one ZeroMQ frame, exactly as specified in
// protocol/PROTOCOL.md. RapidJSON is an implementation detail and stays out of this header.

#include <string>
#include <string_view>

#include "hearth/protocol/messages.hpp"
#include "hearth/protocol/result.hpp"

namespace hearth::protocol {

// Encodes `message` as a compact JSON frame {"v":...,"type":...,"body":{...}}, with "v" =
// wire_version(message) (1 for hello and reject, kVersion for the rest). Optional fields that
// are nullopt, and an empty JobUpdate::traceback, are left out of the body. Strings are written
// as UTF-8; invalid UTF-8 sequences in them are replaced by U+FFFD so the frame always decodes.
// Does not enforce kMaxFrameBytes (the sender decides what to do with a frame that is too large).
// Throws std::invalid_argument if StatementUpdate::output_json is set but does not hold one JSON
// object, if JobUpdate::result_json is set but does not hold one JSON value, or if a progress is
// not finite: those are bugs in the caller (decode() only ever produces valid values).
std::string encode(const Message& message);

// Decodes one frame, strictly: the frame must be valid UTF-8 JSON of at most kMaxFrameBytes, an
// object with exactly the keys v, type (a known message type) and body (an object with exactly
// the message's fields, each of the right JSON type; optional fields may be absent or null;
// state strings must be in the message's allowed set). v must be kVersion, or for hello and
// reject kVersion or kHandshakeVersion. Never throws and never crashes, whatever the input. On
// failure the Error has code "bad_frame" and a message saying what is wrong, e.g.
// "execute: missing field 'code'".
Result<Message> decode(std::string_view frame);

}  // namespace hearth::protocol
