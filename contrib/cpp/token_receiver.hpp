// token_receiver.hpp - receive Schwab tokens pushed by token-refresh-sender.
//
// Header-only, C++17, POSIX sockets and the standard library only (Linux is
// the tested platform). Drop this file into a trading bot and:
//
//   trs::TokenReceiver::Options opts;
//   opts.address = "/run/mybot/token.sock";     // or "tcp://127.0.0.1:9999"
//   opts.on_token = [&](const trs::Token& t) { bot.set_token(t.access_token, t.expires_at); };
//   opts.on_error = [](const std::string& why) { std::fprintf(stderr, "token rejected: %s\n", why.c_str()); };
//   trs::TokenReceiver receiver(std::move(opts));
//   std::string err;
//   if (!receiver.start(&err)) { std::fprintf(stderr, "%s\n", err.c_str()); return 1; }
//   ...
//   receiver.stop();                               // also done by the destructor
//
// Protocol (docs/protocol.md in the token-refresh-sender repository): one
// token per connection. The sender connects, writes exactly
//
//   {"access_token": "...", "refresh_token": "...", "expires_at": 1762984855}
//
// and shuts down its write side. The receiver reads to end of input (at most
// max_size bytes, within read_timeout), answers "OK" or "ERROR: <reason>"
// (at most 64 bytes) and closes the connection.
//
// Validation: the object has the keys access_token, refresh_token (non-empty
// strings) and expires_at (an integer of Unix seconds, later than now), each
// once. Other keys are ignored (a newer sender may add some) but must hold
// valid JSON. Reasons never contain token text.
//
// One background thread accepts and serves one connection at a time (the
// sender connects once per refresh, about every 25 minutes); others wait in
// the listen backlog, and read_timeout bounds each. on_token and on_error
// run on that thread, one at a time, and must return quickly (the sender
// waits 5 seconds for the answer).
//
// This file is part of token-refresh-sender (contrib/cpp).

#ifndef TRS_TOKEN_RECEIVER_HPP
#define TRS_TOKEN_RECEIVER_HPP

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace trs {

// Longest message accepted by default, in bytes.
constexpr std::size_t kDefaultMaxSize = 8192;
// Longest answer sent back; the sender reads at most 64 bytes.
constexpr std::size_t kMaxAnswer = 64;
// expires_at must be below the start of year 10000.
constexpr std::int64_t kMaxExpiresAt = 253402300800;

// One valid token received from the sender.
struct Token {
    std::string access_token;
    std::string refresh_token;
    std::int64_t expires_at = 0;  // Unix seconds
};

// What parse_message found: ok and a token, or the reason it was rejected
// (short, ASCII, never containing token text).
struct ParseResult {
    bool ok = false;
    Token token;
    std::string error;
};

namespace detail {

// Parser for the one flat JSON object of the protocol. Every access checks
// pos_ against the input size first; nothing reads past the input.
class MessageParser {
public:
    explicit MessageParser(std::string_view in) : in_(in) {}

    // Fills tok and returns true, or returns false with error() set.
    bool parse(Token& tok) {
        skip_ws();
        if (eof()) {
            return fail("empty message");
        }
        const char c = at();
        if (c != '{') {
            const char* kind = value_kind();
            if (kind == nullptr) {
                return fail_syntax();
            }
            return fail(std::string("not a JSON object but ") + kind);
        }
        ++pos_;
        bool seen[3] = {false, false, false};
        skip_ws();
        if (!eof() && at() == '}') {
            ++pos_;
        } else {
            for (;;) {
                if (eof() || at() != '"') {
                    return fail_syntax();
                }
                std::string key;
                if (!parse_string(key)) {
                    return false;
                }
                skip_ws();
                if (eof() || at() != ':') {
                    return fail_syntax();
                }
                ++pos_;
                skip_ws();
                int which = -1;
                if (key == "access_token") {
                    which = 0;
                } else if (key == "refresh_token") {
                    which = 1;
                } else if (key == "expires_at") {
                    which = 2;
                }
                if (which >= 0 && seen[which]) {
                    return fail("field \"" + key + "\" appears twice");
                }
                bool ok = false;
                if (which < 0) {
                    ok = skip_value(0);  // a field of a newer sender: checked, then ignored
                } else if (which == 0) {
                    ok = string_field(key, tok.access_token);
                } else if (which == 1) {
                    ok = string_field(key, tok.refresh_token);
                } else {
                    ok = seconds_field(key, tok.expires_at);
                }
                if (which >= 0) {
                    seen[which] = true;
                }
                if (!ok) {
                    return false;
                }
                skip_ws();
                if (eof()) {
                    return fail_syntax();
                }
                if (at() == ',') {
                    ++pos_;
                    skip_ws();
                    continue;
                }
                if (at() == '}') {
                    ++pos_;
                    break;
                }
                return fail_syntax();
            }
        }
        skip_ws();
        if (!eof()) {
            return fail_syntax();
        }
        static const char* const names[3] = {"access_token", "refresh_token", "expires_at"};
        for (int i = 0; i < 3; ++i) {
            if (!seen[i]) {
                return fail(std::string("field \"") + names[i] + "\" is missing");
            }
        }
        return true;
    }

    const std::string& error() const { return error_; }

private:
    std::string_view in_;
    std::size_t pos_ = 0;
    std::string error_;

    bool eof() const { return pos_ >= in_.size(); }
    char at() const { return in_[pos_]; }  // only after !eof()

    bool fail(std::string msg) {
        if (error_.empty()) {
            error_ = std::move(msg);
        }
        return false;
    }

    // A syntax error at pos_, or a truncated message if the input ended.
    bool fail_syntax() {
        if (eof()) {
            return fail("not valid JSON: it ends early (truncated?)");
        }
        return fail("not valid JSON (syntax error at byte " + std::to_string(pos_) + ")");
    }

    void skip_ws() {
        while (!eof()) {
            const char c = at();
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                return;
            }
            ++pos_;
        }
    }

    // The JSON type of the value starting at pos_, for error messages;
    // nullptr if no valid value starts there. Literals are checked in full.
    const char* value_kind() const {
        const char c = at();
        switch (c) {
        case '{': return "object";
        case '[': return "array";
        case '"': return "string";
        case '-': return "number";
        default: break;
        }
        if (c >= '0' && c <= '9') {
            return "number";
        }
        static const struct {
            std::string_view word;
            const char* kind;
        } literals[] = {{"true", "boolean"}, {"false", "boolean"}, {"null", "null"}};
        for (const auto& lit : literals) {
            if (in_.substr(pos_, lit.word.size()) == lit.word) {
                return lit.kind;
            }
        }
        return nullptr;
    }

    // A literal that is cut off by the end of input reads as truncated.
    bool fail_value_kind_unknown() {
        static const std::string_view words[] = {"true", "false", "null"};
        const std::string_view rest = in_.substr(pos_);
        for (const auto& w : words) {
            if (rest.size() < w.size() && w.substr(0, rest.size()) == rest) {
                return fail("not valid JSON: it ends early (truncated?)");
            }
        }
        return fail_syntax();
    }

    // Deepest nesting accepted inside an unknown field's value.
    static constexpr int kMaxDepth = 32;

    // skip_value checks the JSON value at pos_ and moves past it: the value
    // of a field this receiver does not know (forward compatible, like the
    // Go receiver). Strings get the same checks as the token fields.
    bool skip_value(int depth) {
        if (eof()) {
            return fail_syntax();
        }
        const char c = at();
        if (c == '"') {
            std::string ignored;
            return parse_string(ignored);
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            return skip_number();
        }
        if (c == '{' || c == '[') {
            if (depth >= kMaxDepth) {
                return fail("not valid JSON: an unknown field nests more than 32 levels deep");
            }
            const char close = c == '{' ? '}' : ']';
            ++pos_;
            skip_ws();
            if (!eof() && at() == close) {
                ++pos_;
                return true;
            }
            for (;;) {
                if (c == '{') {
                    std::string ignored;
                    if (eof() || at() != '"') {
                        return fail_syntax();
                    }
                    if (!parse_string(ignored)) {
                        return false;
                    }
                    skip_ws();
                    if (eof() || at() != ':') {
                        return fail_syntax();
                    }
                    ++pos_;
                    skip_ws();
                }
                if (!skip_value(depth + 1)) {
                    return false;
                }
                skip_ws();
                if (eof()) {
                    return fail_syntax();
                }
                if (at() == ',') {
                    ++pos_;
                    skip_ws();
                    continue;
                }
                if (at() == close) {
                    ++pos_;
                    return true;
                }
                return fail_syntax();
            }
        }
        static const std::string_view words[] = {"true", "false", "null"};
        for (const auto& w : words) {
            if (in_.substr(pos_, w.size()) == w) {
                pos_ += w.size();
                return true;
            }
        }
        return fail_value_kind_unknown();
    }

    // A JSON number at pos_ (which holds '-' or a digit).
    bool skip_number() {
        if (at() == '-') {
            ++pos_;
        }
        if (eof()) {
            return fail_syntax();
        }
        if (at() == '0') {
            ++pos_;
        } else if (at() >= '1' && at() <= '9') {
            while (!eof() && at() >= '0' && at() <= '9') {
                ++pos_;
            }
        } else {
            return fail_syntax();
        }
        if (!eof() && at() == '.') {
            ++pos_;
            if (!digits()) {
                return false;
            }
        }
        if (!eof() && (at() == 'e' || at() == 'E')) {
            ++pos_;
            if (!eof() && (at() == '+' || at() == '-')) {
                ++pos_;
            }
            if (!digits()) {
                return false;
            }
        }
        return true;
    }

    bool string_field(const std::string& name, std::string& out) {
        if (eof()) {
            return fail_syntax();
        }
        if (at() != '"') {
            const char* kind = value_kind();
            if (kind == nullptr) {
                return fail_value_kind_unknown();
            }
            return fail("field \"" + name + "\" must be a string, not " + kind);
        }
        out.clear();
        if (!parse_string(out)) {
            return false;
        }
        if (out.empty()) {
            return fail("field \"" + name + "\" is empty");
        }
        if (out.find('\0') != std::string::npos) {
            return fail("field \"" + name + "\" contains a NUL character");
        }
        return true;
    }

    bool seconds_field(const std::string& name, std::int64_t& out) {
        if (eof()) {
            return fail_syntax();
        }
        const char c = at();
        if (c != '-' && !(c >= '0' && c <= '9')) {
            const char* kind = value_kind();
            if (kind == nullptr) {
                return fail_value_kind_unknown();
            }
            return fail("field \"" + name + "\" must be Unix seconds, not " + kind);
        }
        bool negative = false;
        if (c == '-') {
            negative = true;
            ++pos_;
        }
        if (eof()) {
            return fail_syntax();
        }
        std::int64_t value = 0;
        bool too_big = false;
        if (at() == '0') {
            ++pos_;
            if (!eof() && at() >= '0' && at() <= '9') {
                return fail_syntax();  // no leading zeros in JSON
            }
        } else if (at() >= '1' && at() <= '9') {
            while (!eof() && at() >= '0' && at() <= '9') {
                const int digit = at() - '0';
                if (value > (kMaxExpiresAt - digit) / 10) {
                    too_big = true;  // keep consuming digits, value stays bounded
                } else {
                    value = value * 10 + digit;
                }
                ++pos_;
            }
        } else {
            return fail_syntax();
        }
        bool fraction = false;
        if (!eof() && at() == '.') {
            fraction = true;
            ++pos_;
            if (!digits()) {
                return false;
            }
        }
        if (!eof() && (at() == 'e' || at() == 'E')) {
            fraction = true;
            ++pos_;
            if (!eof() && (at() == '+' || at() == '-')) {
                ++pos_;
            }
            if (!digits()) {
                return false;
            }
        }
        if (fraction) {
            return fail("field \"" + name + "\" must be whole Unix seconds");
        }
        if (negative || too_big || value <= 0 || value >= kMaxExpiresAt) {
            return fail("field \"" + name + "\" is out of range");
        }
        out = value;
        return true;
    }

    // One or more decimal digits.
    bool digits() {
        if (eof() || at() < '0' || at() > '9') {
            return fail_syntax();
        }
        while (!eof() && at() >= '0' && at() <= '9') {
            ++pos_;
        }
        return true;
    }

    static int hex_value(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    // Four hex digits at pos_.
    bool hex4(std::uint32_t& out) {
        out = 0;
        for (int i = 0; i < 4; ++i) {
            if (eof()) {
                return fail_syntax();
            }
            const int v = hex_value(at());
            if (v < 0) {
                return fail_syntax();
            }
            out = (out << 4) | static_cast<std::uint32_t>(v);
            ++pos_;
        }
        return true;
    }

    static void append_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    // A \uXXXX escape (pos_ just after the 'u'), with surrogate pairs joined.
    bool unicode_escape(std::string& out) {
        const std::size_t start = pos_ - 2;  // at the backslash
        std::uint32_t cp = 0;
        if (!hex4(cp)) {
            return false;
        }
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            pos_ = start;  // a low surrogate with no high one before it
            return fail_syntax();
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (eof()) {
                return fail_syntax();
            }
            if (at() != '\\') {
                pos_ = start;  // a high surrogate with no low one after it
                return fail_syntax();
            }
            ++pos_;
            if (eof()) {
                return fail_syntax();
            }
            if (at() != 'u') {
                pos_ = start;
                return fail_syntax();
            }
            ++pos_;
            std::uint32_t low = 0;
            if (!hex4(low)) {
                return false;
            }
            if (low < 0xDC00 || low > 0xDFFF) {
                pos_ = start;
                return fail_syntax();
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(out, cp);
        return true;
    }

    // Copies one well-formed UTF-8 sequence of 2 to 4 bytes starting at pos_.
    bool utf8_sequence(std::string& out) {
        const auto b0 = static_cast<unsigned char>(at());
        std::size_t len = 0;
        unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (b0 >= 0xC2 && b0 <= 0xDF) {
            len = 2;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            len = 3;
            if (b0 == 0xE0) lo = 0xA0;        // no overlong forms
            if (b0 == 0xED) hi = 0x9F;        // no UTF-16 surrogates
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            len = 4;
            if (b0 == 0xF0) lo = 0x90;        // no overlong forms
            if (b0 == 0xF4) hi = 0x8F;        // nothing above U+10FFFF
        } else {
            return fail("not valid JSON (invalid UTF-8 at byte " + std::to_string(pos_) + ")");
        }
        for (std::size_t i = 1; i < len; ++i) {
            if (pos_ + i >= in_.size()) {
                pos_ = in_.size();
                return fail_syntax();
            }
            const auto b = static_cast<unsigned char>(in_[pos_ + i]);
            const unsigned char min = i == 1 ? lo : 0x80;
            const unsigned char max = i == 1 ? hi : 0xBF;
            if (b < min || b > max) {
                return fail("not valid JSON (invalid UTF-8 at byte " + std::to_string(pos_) + ")");
            }
        }
        out.append(in_.data() + pos_, len);
        pos_ += len;
        return true;
    }

    // A JSON string at pos_ (which holds the opening quote), decoded into out.
    bool parse_string(std::string& out) {
        ++pos_;
        for (;;) {
            if (eof()) {
                return fail_syntax();
            }
            const auto c = static_cast<unsigned char>(at());
            if (c == '"') {
                ++pos_;
                return true;
            }
            if (c < 0x20) {
                return fail_syntax();  // raw control characters must be escaped
            }
            if (c >= 0x80) {
                if (!utf8_sequence(out)) {
                    return false;
                }
                continue;
            }
            if (c != '\\') {
                out += static_cast<char>(c);
                ++pos_;
                continue;
            }
            ++pos_;
            if (eof()) {
                return fail_syntax();
            }
            const char e = at();
            ++pos_;
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u':
                if (!unicode_escape(out)) {
                    return false;
                }
                break;
            default:
                --pos_;
                return fail_syntax();
            }
        }
    }
};

// 2025-11-12T21:30:54Z
inline std::string format_utc(std::int64_t unix_seconds) {
    const auto t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    char buf[32];
    if (static_cast<std::int64_t>(t) != unix_seconds || gmtime_r(&t, &tm) == nullptr ||
        std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        return std::to_string(unix_seconds);
    }
    return buf;
}

// "5s", "250ms", like Go's time.Duration.
inline std::string format_duration(std::chrono::milliseconds d) {
    const auto ms = d.count();
    if (ms % 1000 == 0) {
        return std::to_string(ms / 1000) + "s";
    }
    return std::to_string(ms) + "ms";
}

inline std::string errno_text(int err) {
    char buf[128];
    buf[0] = '\0';
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(err, buf, sizeof buf);  // the GNU variant returns the text
#else
    if (strerror_r(err, buf, sizeof buf) != 0) {
        return "error " + std::to_string(err);
    }
    return buf;
#endif
}

inline void close_fd(int& fd) {
    if (fd >= 0) {
        ::close(fd);  // never retried: the descriptor is gone even on EINTR
        fd = -1;
    }
}

inline bool set_flags(int fd) {
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        return false;
    }
    const int fdfl = ::fcntl(fd, F_GETFD);
    return fdfl >= 0 && ::fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) >= 0;
}

inline bool make_unix_addr(const std::string& path, sockaddr_un& addr, socklen_t& len) {
    std::memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) {
        return false;
    }
    std::memcpy(addr.sun_path, path.data(), path.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return true;
}

}  // namespace detail

// parse_message checks one message as the sender writes it. now is the
// current time in Unix seconds; a token with expires_at <= now is rejected.
inline ParseResult parse_message(std::string_view msg, std::int64_t now) {
    ParseResult r;
    detail::MessageParser p(msg);
    Token tok;
    if (!p.parse(tok)) {
        r.error = p.error();
        return r;
    }
    if (tok.expires_at <= now) {
        r.error = "token expired at " + detail::format_utc(tok.expires_at);
        return r;
    }
    r.ok = true;
    r.token = std::move(tok);
    return r;
}

// redact returns a prefix of a secret that is safe to log: at most 8
// characters and never more than a quarter of it, then "..."; "(empty)" for
// an empty string. Same rule as token-refresh-sender's own logs. Counts
// UTF-8 characters (parse_message only returns valid UTF-8).
inline std::string redact(std::string_view secret) {
    if (secret.empty()) {
        return "(empty)";
    }
    auto is_lead = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; };
    std::size_t chars = 0;
    for (const char c : secret) {
        if (is_lead(c)) {
            ++chars;
        }
    }
    std::size_t keep = std::min<std::size_t>(8, chars / 4);
    std::size_t end = 0;
    while (end < secret.size()) {
        if (is_lead(secret[end])) {
            if (keep == 0) {
                break;
            }
            --keep;
        }
        ++end;
    }
    return std::string(secret.substr(0, end)) + "...";
}

// TokenReceiver listens on a Unix socket (or loopback TCP port) for tokens
// pushed by token-refresh-sender, on a thread of its own.
class TokenReceiver {
public:
    struct Options {
        // A Unix socket path (at most 107 bytes), or "tcp://127.0.0.1:PORT",
        // "tcp://[::1]:PORT", "tcp://localhost:PORT" (loopback only; port 0
        // picks a free one, see bound_address()).
        std::string address = "/tmp/bigbrother_token.sock";
        // Permission bits of the socket file; 0600 lets only this user's
        // processes push tokens.
        mode_t mode = 0600;
        // Longest message accepted, in bytes (0: the default; at most 1 MiB).
        std::size_t max_size = kDefaultMaxSize;
        // Time allowed for reading one message, from connect to end of input.
        std::chrono::milliseconds read_timeout{5000};
        // Called with each valid token, before "OK" is sent. If it throws,
        // the sender gets an ERROR and tries again.
        std::function<void(const Token&)> on_token;
        // Called with the reason for each rejected message (the text after
        // "ERROR: " in the answer) and for listener problems. Never contains
        // token text.
        std::function<void(const std::string&)> on_error;
        // Current time in Unix seconds; default std::time(nullptr).
        std::function<std::int64_t()> now;
    };

    TokenReceiver() = default;
    explicit TokenReceiver(Options opts) : opts_(std::move(opts)) {}
    ~TokenReceiver() { stop(); }
    TokenReceiver(const TokenReceiver&) = delete;
    TokenReceiver& operator=(const TokenReceiver&) = delete;

    // start binds the address and starts the listening thread. When it
    // returns true the sender can connect. A leftover socket file nobody
    // listens on is replaced; a socket another process listens on, or any
    // other kind of file at the path, is an error (reason in *error).
    bool start(std::string* error = nullptr) {
        std::lock_guard<std::mutex> lock(life_mu_);
        std::string err;
        if (!start_locked(err)) {
            if (error != nullptr) {
                *error = err;
            }
            return false;
        }
        return true;
    }

    // stop wakes the listening thread, waits for it, closes open connections
    // without answering, and removes the socket file if it is still the one
    // start() created. Safe to call twice. Called from inside on_token or
    // on_error it only asks the thread to stop (a later stop() or the
    // destructor waits for it).
    void stop() {
        if (current_receiver() == this) {
            request_stop();  // on our own thread: it cannot wait for itself
            return;
        }
        std::lock_guard<std::mutex> lock(life_mu_);
        if (!thread_.joinable()) {
            return;
        }
        request_stop();
        thread_.join();
        close_wake_pipe();
    }

    // request_stop asks the thread to stop without waiting. It is
    // async-signal-safe, for bots that stop from a signal handler; call
    // stop() afterwards from normal code.
    void request_stop() noexcept {
        stop_requested_.store(true);
        const int fd = wake_w_.load();
        if (fd >= 0) {
            const char b = 'x';
            const ssize_t n = ::write(fd, &b, 1);  // a full pipe is fine: already woken
            (void)n;
        }
    }

    // running reports whether the listening thread is serving.
    bool running() const { return running_.load(); }

    // latest is the most recently received valid token (the last to arrive),
    // or nothing if none has arrived yet.
    std::optional<Token> latest() const {
        std::lock_guard<std::mutex> lock(latest_mu_);
        return latest_;
    }

    // bound_address is the address being served, in Options::address syntax
    // with the real port for tcp://...:0; empty before start().
    std::string bound_address() const {
        std::lock_guard<std::mutex> lock(latest_mu_);
        return bound_;
    }

private:
    using clock = std::chrono::steady_clock;

    Options opts_;
    mutable std::mutex life_mu_;    // start/stop
    mutable std::mutex latest_mu_;  // latest_, bound_
    std::optional<Token> latest_;
    std::string bound_;
    std::thread thread_;
    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> running_{false};
    std::atomic<bool> exited_{false};
    int listen_fd_ = -1;
    int wake_r_ = -1;
    std::atomic<int> wake_w_{-1};  // read by request_stop(), maybe in a signal handler
    std::string sock_path_;  // the socket file we created, "" for TCP
    dev_t sock_dev_ = 0;
    ino_t sock_ino_ = 0;

    bool start_locked(std::string& err) {
        if (thread_.joinable()) {
            if (!exited_.load()) {
                err = "listen on " + bound_address() + ": already listening";
                return false;
            }
            thread_.join();  // stopped from inside a callback earlier
            close_wake_pipe();
        }
        if (opts_.max_size == 0) {
            opts_.max_size = kDefaultMaxSize;
        }
        opts_.max_size = std::min<std::size_t>(opts_.max_size, std::size_t{1} << 20);
        if (opts_.read_timeout.count() <= 0) {
            opts_.read_timeout = std::chrono::milliseconds(5000);
        }
        std::string bound;
        const std::string& a = opts_.address;
        const bool ok = a.compare(0, 6, "tcp://") == 0 ? listen_tcp(a.substr(6), bound, err)
                                                       : listen_unix(a, bound, err);
        if (!ok) {
            return false;
        }
        int p[2];
        if (::pipe(p) != 0) {
            err = "listen on " + bound + ": pipe: " + detail::errno_text(errno);
            release_listener();
            return false;
        }
        wake_r_ = p[0];
        wake_w_.store(p[1]);
        if (!detail::set_flags(p[0]) || !detail::set_flags(p[1]) || !detail::set_flags(listen_fd_)) {
            err = "listen on " + bound + ": fcntl: " + detail::errno_text(errno);
            release_listener();
            close_wake_pipe();
            return false;
        }
        {
            std::lock_guard<std::mutex> lock(latest_mu_);
            bound_ = bound;
        }
        stop_requested_.store(false);
        exited_.store(false);
        running_.store(true);
        try {
            thread_ = std::thread(&TokenReceiver::run, this);
        } catch (const std::exception& e) {
            running_.store(false);
            err = std::string("listen on ") + bound + ": cannot start thread: " + e.what();
            release_listener();
            close_wake_pipe();
            return false;
        }
        return true;
    }

    void close_wake_pipe() {
        const int w = wake_w_.exchange(-1);
        if (w >= 0) {
            ::close(w);
        }
        detail::close_fd(wake_r_);
    }

    // The receiver whose thread is running this code, if any.
    static const TokenReceiver*& current_receiver() {
        thread_local const TokenReceiver* self = nullptr;
        return self;
    }

    bool listen_unix(const std::string& path, std::string& bound, std::string& err) {
        const std::string bad = "receiver address \"" + path + "\": ";
        if (path.empty()) {
            err = bad + "empty; set address to a Unix socket path or tcp://127.0.0.1:PORT";
            return false;
        }
        if (path.find('\0') != std::string::npos) {
            err = bad + "a socket path cannot contain a NUL byte";
            return false;
        }
        if (path[0] == '@') {
            err = bad + "abstract Unix sockets (@name) are not supported; use a filesystem path";
            return false;
        }
        sockaddr_un addr;
        socklen_t len = 0;
        if (!detail::make_unix_addr(path, addr, len)) {
            err = bad + "Unix socket paths are limited to 107 bytes, this one has " +
                  std::to_string(path.size()) + "; use a shorter path";
            return false;
        }
        if (!remove_stale(path, addr, len, err)) {
            return false;
        }
        listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
        if (listen_fd_ < 0) {
            err = "listen on " + path + ": socket: " + detail::errno_text(errno);
            return false;
        }
        if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
            const int e = errno;
            detail::close_fd(listen_fd_);
            err = e == EADDRINUSE ? "socket " + path + " is in use by another process"
                                  : "listen on " + path + ": " + detail::errno_text(e);
            return false;
        }
        // Nobody can connect before listen(), so setting the mode here
        // leaves no window with looser permissions.
        struct stat st;
        if (::chmod(path.c_str(), opts_.mode & 07777) != 0 || ::lstat(path.c_str(), &st) != 0) {
            const int e = errno;
            detail::close_fd(listen_fd_);
            ::unlink(path.c_str());
            char mode[8];
            std::snprintf(mode, sizeof mode, "%#o", static_cast<unsigned>(opts_.mode & 07777));
            err = "listen on " + path + ": set socket mode " + mode + ": " + detail::errno_text(e);
            return false;
        }
        sock_path_ = path;
        sock_dev_ = st.st_dev;
        sock_ino_ = st.st_ino;
        if (::listen(listen_fd_, 16) != 0) {
            err = "listen on " + path + ": " + detail::errno_text(errno);
            release_listener();
            return false;
        }
        bound = path;
        return true;
    }

    // remove_stale clears the way for a new socket at path, or says why not.
    static bool remove_stale(const std::string& path, const sockaddr_un& addr, socklen_t len, std::string& err) {
        struct stat st;
        if (::lstat(path.c_str(), &st) != 0) {
            if (errno == ENOENT) {
                return true;
            }
            err = "listen on " + path + ": " + detail::errno_text(errno);
            return false;
        }
        if (!S_ISSOCK(st.st_mode)) {
            err = path + " exists and is not a socket; refusing to remove it";
            return false;
        }
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0) {
            err = "listen on " + path + ": socket: " + detail::errno_text(errno);
            return false;
        }
        detail::set_flags(fd);  // non-blocking: a full backlog gives EAGAIN, not a hang
        int rc;
        do {
            rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len);
        } while (rc != 0 && errno == EINTR);
        const int e = rc == 0 ? 0 : errno;
        detail::close_fd(fd);
        if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
            err = "socket " + path + " is in use by another process";
            return false;
        }
        if (e == ECONNREFUSED) {
            if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
                err = "remove stale socket " + path + ": " + detail::errno_text(errno);
                return false;
            }
            return true;
        }
        err = "socket " + path + " exists and cannot be checked (" + detail::errno_text(e) +
              "); remove it if no process uses it";
        return false;
    }

    bool listen_tcp(const std::string& hostport, std::string& bound, std::string& err) {
        const std::string bad = "receiver address \"tcp://" + hostport + "\": ";
        const std::string loopback_only =
            "only loopback addresses are allowed (127.0.0.1, [::1] or localhost): tokens must not leave this machine";
        std::string host, port;
        if (!hostport.empty() && hostport[0] == '[') {
            const auto close = hostport.find(']');
            if (close == std::string::npos || close + 1 >= hostport.size() || hostport[close + 1] != ':') {
                err = bad + "expected tcp://HOST:PORT, for example tcp://127.0.0.1:9999";
                return false;
            }
            host = hostport.substr(1, close - 1);
            port = hostport.substr(close + 2);
        } else {
            const auto colon = hostport.rfind(':');
            if (colon == std::string::npos || hostport.find(':') != colon) {
                err = bad + "expected tcp://HOST:PORT, for example tcp://127.0.0.1:9999";
                return false;
            }
            host = hostport.substr(0, colon);
            port = hostport.substr(colon + 1);
        }
        unsigned long portnum = 0;
        bool port_ok = !port.empty() && port.size() <= 5;
        for (const char c : port) {
            port_ok = port_ok && c >= '0' && c <= '9';
        }
        if (port_ok) {
            portnum = std::stoul(port);
            port_ok = portnum <= 65535;
        }
        if (!port_ok) {
            err = bad + "port \"" + port + "\" must be a number from 0 to 65535";
            return false;
        }
        sockaddr_storage ss;
        std::memset(&ss, 0, sizeof ss);
        socklen_t len = 0;
        bool v6 = false;
        std::string lower;
        for (const char c : host) {
            lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        if (lower == "localhost") {
            host = "127.0.0.1";
        }
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
        if (::inet_pton(AF_INET, host.c_str(), &sin->sin_addr) == 1) {
            const auto first = static_cast<unsigned char>(reinterpret_cast<const unsigned char*>(&sin->sin_addr)[0]);
            if (first != 127) {
                err = bad + loopback_only;
                return false;
            }
            sin->sin_family = AF_INET;
            sin->sin_port = htons(static_cast<std::uint16_t>(portnum));
            len = sizeof(sockaddr_in);
        } else if (::inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) == 1) {
            if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
                err = bad + loopback_only;
                return false;
            }
            v6 = true;
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons(static_cast<std::uint16_t>(portnum));
            len = sizeof(sockaddr_in6);
        } else {
            err = bad + loopback_only;
            return false;
        }
        listen_fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
        if (listen_fd_ < 0) {
            err = "listen on tcp://" + hostport + ": socket: " + detail::errno_text(errno);
            return false;
        }
        const int one = 1;
        ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&ss), len) != 0 || ::listen(listen_fd_, 16) != 0) {
            err = "listen on tcp://" + hostport + ": " + detail::errno_text(errno);
            detail::close_fd(listen_fd_);
            return false;
        }
        sockaddr_storage got;
        socklen_t got_len = sizeof got;
        if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&got), &got_len) != 0) {
            err = "listen on tcp://" + hostport + ": getsockname: " + detail::errno_text(errno);
            detail::close_fd(listen_fd_);
            return false;
        }
        const std::uint16_t real_port = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&got)->sin6_port)
                                           : ntohs(reinterpret_cast<sockaddr_in*>(&got)->sin_port);
        char text[INET6_ADDRSTRLEN] = {0};
        ::inet_ntop(v6 ? AF_INET6 : AF_INET, v6 ? static_cast<const void*>(&sin6->sin6_addr)
                                                : static_cast<const void*>(&sin->sin_addr),
                    text, sizeof text);
        bound = v6 ? "tcp://[" + std::string(text) + "]:" + std::to_string(real_port)
                   : "tcp://" + std::string(text) + ":" + std::to_string(real_port);
        sock_path_.clear();
        return true;
    }

    // release_listener closes the listener and removes the socket file if it
    // is still the one we created (someone may have replaced it).
    void release_listener() {
        detail::close_fd(listen_fd_);
        if (!sock_path_.empty()) {
            struct stat st;
            if (::lstat(sock_path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == sock_dev_ &&
                st.st_ino == sock_ino_) {
                ::unlink(sock_path_.c_str());
            }
            sock_path_.clear();
        }
    }

    void report(const std::string& why) {
        if (opts_.on_error) {
            try {
                opts_.on_error(why);
            } catch (...) {
                // A throwing error callback must not end the receiver.
            }
        }
    }

    std::int64_t now() const {
        if (opts_.now) {
            return opts_.now();
        }
        return static_cast<std::int64_t>(std::time(nullptr));
    }

    // answer_for checks a complete message and returns the answer to send.
    std::string answer_for(const std::string& data) {
        ParseResult r = parse_message(data, now());
        if (!r.ok) {
            report(r.error);
            return "ERROR: " + r.error;
        }
        {
            std::lock_guard<std::mutex> lock(latest_mu_);
            latest_ = r.token;
        }
        if (opts_.on_token) {
            try {
                opts_.on_token(r.token);
            } catch (...) {
                const std::string why = "the bot could not take the token";
                report(why);
                return "ERROR: " + why;
            }
        }
        return "OK";
    }

    // send_answer writes answer (at most 64 bytes) without blocking.
    static void send_answer(int fd, std::string answer) {
        if (answer.size() > kMaxAnswer) {
            answer.resize(kMaxAnswer);
        }
        int flags = MSG_DONTWAIT;
#ifdef MSG_NOSIGNAL
        flags |= MSG_NOSIGNAL;  // a sender that went away must not raise SIGPIPE
#endif
        ssize_t n;
        do {
            n = ::send(fd, answer.data(), answer.size(), flags);
        } while (n < 0 && errno == EINTR);
    }

    enum class Ready { readable, timeout, stop };

    // wait_for waits until fd is readable (fd -1: never), the deadline
    // passes, or a stop is requested through the wake pipe.
    Ready wait_for(int fd, std::optional<clock::time_point> deadline) {
        for (;;) {
            if (stop_requested_.load()) {
                return Ready::stop;
            }
            int timeout = -1;
            if (deadline) {
                const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*deadline - clock::now()).count();
                if (ms <= 0) {
                    return Ready::timeout;
                }
                timeout = static_cast<int>(std::min<long long>(ms, INT_MAX));
            }
            pollfd pfds[2] = {{wake_r_, POLLIN, 0}, {fd, POLLIN, 0}};
            const int n = ::poll(pfds, 2, timeout);
            if (n < 0 && errno != EINTR) {
                report("poll failed: " + detail::errno_text(errno) + "; receiver stopped");
                stop_requested_.store(true);
                return Ready::stop;
            }
            if (n > 0 && pfds[0].revents != 0) {
                char drain[64];
                while (::read(wake_r_, drain, sizeof drain) > 0) {
                }
                continue;  // stop_requested_ says whether to stop
            }
            if (n > 0 && pfds[1].revents != 0) {
                return Ready::readable;
            }
        }
    }

    // serve reads one message from fd and answers it, within read_timeout.
    // On a stop request the connection is left without an answer (not the
    // sender's fault; it will retry).
    void serve(int fd) {
        const auto deadline = clock::now() + opts_.read_timeout;
        std::string data;
        char buf[4096];
        for (;;) {
            const Ready ready = wait_for(fd, deadline);
            if (ready == Ready::stop) {
                return;
            }
            if (ready == Ready::timeout) {
                const std::string why = "no end of message within " + detail::format_duration(opts_.read_timeout);
                report(why);
                send_answer(fd, "ERROR: " + why);
                return;
            }
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n > 0) {
                const std::size_t room = opts_.max_size + 1 - data.size();
                data.append(buf, std::min(room, static_cast<std::size_t>(n)));
                if (data.size() > opts_.max_size) {
                    const std::string why = "message larger than " + std::to_string(opts_.max_size) + " bytes";
                    report(why);
                    // Answer now, then read the rest until the sender's
                    // half-close: closing with unread data would reset the
                    // connection and could lose the answer.
                    send_answer(fd, "ERROR: " + why);
                    ::shutdown(fd, SHUT_WR);
                    discard_rest(fd, deadline);
                    return;
                }
            } else if (n == 0) {
                send_answer(fd, answer_for(data));
                return;
            } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
                report("read failed: " + detail::errno_text(errno));
                send_answer(fd, "ERROR: read failed");
                return;
            }
        }
    }

    // discard_rest reads and drops what the sender still sends, until its
    // end of input, an error, the deadline or a stop.
    void discard_rest(int fd, clock::time_point deadline) {
        char buf[4096];
        while (wait_for(fd, deadline) == Ready::readable) {
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
                return;
            }
        }
    }

    void run() {
        current_receiver() = this;
        while (wait_for(listen_fd_, std::nullopt) == Ready::readable) {
            int fd = ::accept(listen_fd_, nullptr, nullptr);
            if (fd < 0) {
                const int e = errno;
                if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == EAGAIN || e == EWOULDBLOCK) {
                    continue;
                }
                // Out of descriptors or memory: pause instead of spinning on
                // a listener that stays readable.
                report("accept failed: " + detail::errno_text(e) + "; retrying in 100ms");
                if (wait_for(-1, clock::now() + std::chrono::milliseconds(100)) == Ready::stop) {
                    break;
                }
                continue;
            }
            if (detail::set_flags(fd)) {
                serve(fd);
            }
            detail::close_fd(fd);
        }
        release_listener();
        {
            std::lock_guard<std::mutex> lock(latest_mu_);
            bound_.clear();
        }
        running_.store(false);
        exited_.store(true);
        current_receiver() = nullptr;
    }
};

}  // namespace trs

#endif  // TRS_TOKEN_RECEIVER_HPP
