//go:build ignore

// The line above keeps the Go tool from treating this file as cgo source of
// package cpp; it is an ordinary comment to a C++ compiler.
//
// fuzz_parser: feeds parse_message deterministic mutations of valid and
// invalid messages, for a run under AddressSanitizer and
// UndefinedBehaviorSanitizer (cpp_test.go builds and runs it):
//
//   g++ -std=c++17 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
//       fuzz_parser.cpp -o fuzz_parser && ./fuzz_parser 200000
//
// Besides memory errors it checks what a caller relies on: an accepted
// token has non-empty strings and a future expires_at, and an error is
// short and never holds the token text of the input.

#include "token_receiver.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

std::uint64_t rng_state = 0x9E3779B97F4A7C15ull;

std::uint64_t next_rand() {  // xorshift64*
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(next_rand() % n); }

const char* const kPieces[] = {
    "{", "}", "[", "]", "\"", ":", ",", "\\", "\\u", "\\ud800", "\\udc00", "\\u0000", "0", "-", ".", "e", "E+",
    "1762984855", "99999999999999999999", "true", "false", "null", "nul", " ", "\t", "\n", "\xc3\xa9", "\xed\xa0\x80",
    "\xf4\x90\x80\x80", "\xff", "\"access_token\"", "\"refresh_token\"", "\"expires_at\"", "\"future_key\"",
    "{\"a\":[1,{\"b\":null}]}", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["};

std::string mutate(std::string s) {
    const int edits = 1 + static_cast<int>(below(4));
    for (int i = 0; i < edits; ++i) {
        const std::size_t pos = below(s.size() + 1);
        switch (below(5)) {
        case 0:  // flip a byte
            if (!s.empty()) s[below(s.size())] = static_cast<char>(next_rand());
            break;
        case 1:  // delete a run
            if (!s.empty()) s.erase(below(s.size()), 1 + below(8));
            break;
        case 2:  // insert a JSON-ish piece
            s.insert(pos, kPieces[below(sizeof kPieces / sizeof kPieces[0])]);
            break;
        case 3:  // truncate
            s.resize(below(s.size() + 1));
            break;
        default:  // duplicate a run
            if (!s.empty()) {
                const std::size_t from = below(s.size());
                s.insert(pos, s.substr(from, 1 + below(16)));
            }
        }
    }
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    const long iterations = argc > 1 ? std::atol(argv[1]) : 100000;
    const std::int64_t now = 1762983055;
    const std::string secret = "SECRETSECRET";
    const std::vector<std::string> seeds = {
        "{\"access_token\": \"I0.SECRETSECRET@\", \"refresh_token\": \"R.SECRETSECRET@\", \"expires_at\": 1762984855}",
        "{\"expires_at\":1762984855,\"refresh_token\":\"r\\u00e9SECRETSECRET\",\"access_token\":\"a\\ud83d\\ude00SECRETSECRET\","
        "\"token_type\":\"Bearer\",\"new\":{\"x\":[1,2.5e3,true,false,null,\"s\"]}}",
        "{\"access_token\":\"SECRETSECRET\",\"refresh_token\":\"SECRETSECRET\",\"expires_at\":1}",
        "[1,2,3]",
        "",
    };
    long accepted = 0;
    for (long i = 0; i < iterations; ++i) {
        const std::string& seed = seeds[below(seeds.size())];
        const std::string msg = i < static_cast<long>(seeds.size()) ? seeds[static_cast<std::size_t>(i)] : mutate(seed);
        const trs::ParseResult r = trs::parse_message(msg, now);
        if (r.ok) {
            ++accepted;
            if (r.token.access_token.empty() || r.token.refresh_token.empty() || r.token.expires_at <= now ||
                !r.error.empty()) {
                std::fprintf(stderr, "fuzz_parser: accepted a bad token at iteration %ld\n", i);
                return 1;
            }
            continue;
        }
        if (r.error.empty() || r.error.size() > 200 || r.error.find(secret) != std::string::npos) {
            std::fprintf(stderr, "fuzz_parser: bad error text at iteration %ld: %s\n", i, r.error.c_str());
            return 1;
        }
        (void)trs::redact(msg);
    }
    std::printf("fuzz_parser: %ld messages, %ld accepted\n", iterations, accepted);
    return accepted > 0 ? 0 : 1;
}
