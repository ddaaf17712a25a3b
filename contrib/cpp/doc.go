// Package cpp holds the C++ drop-in receiver for trading bots written in
// C++: token_receiver.hpp (header-only, C++17, POSIX) and example_bot.cpp,
// which uses it. The package has no Go API; its tests compile example_bot
// with g++ and run it against the real token-refresh-sender binary, and run
// fuzz_parser.cpp and stress_receiver.cpp under AddressSanitizer,
// UndefinedBehaviorSanitizer and ThreadSanitizer.
package cpp
