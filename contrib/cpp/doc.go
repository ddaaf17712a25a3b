// Package cpp holds the C++ drop-in receiver for trading bots written in
// C++: token_receiver.hpp (header-only, C++17, POSIX) and example_bot.cpp,
// which uses it. The package has no Go API; its test compiles example_bot
// with g++ and runs it against the real token-refresh-sender binary.
package cpp
