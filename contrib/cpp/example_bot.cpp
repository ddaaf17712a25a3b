//go:build ignore

// The line above keeps the Go tool from treating this file as cgo source of
// package cpp; it is an ordinary comment to a C++ compiler.
//
// example_bot: a stand-in trading bot that receives tokens from
// token-refresh-sender through token_receiver.hpp.
//
//   g++ -std=c++17 -O2 -Wall -Wextra -pthread example_bot.cpp -o example_bot
//   ./example_bot /run/mybot/token.sock      (or tcp://127.0.0.1:9999)
//
// It prints one line per token (a short prefix of the access token, never
// the token) and one per rejected message, and stops on SIGINT or SIGTERM,
// removing its socket file.

#include "token_receiver.hpp"

#include <signal.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s SOCKET_PATH|tcp://127.0.0.1:PORT\n", argc > 0 ? argv[0] : "example_bot");
        return 2;
    }

    // Block the stop signals before the receiver's thread starts, so the
    // thread inherits the mask and only sigwait() below sees them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr) != 0) {
        std::fprintf(stderr, "example_bot: cannot block signals\n");
        return 1;
    }

    trs::TokenReceiver::Options opts;
    opts.address = argv[1];
    opts.on_token = [](const trs::Token& t) {
        std::printf("example_bot: received token %s expires_at=%lld\n", trs::redact(t.access_token).c_str(),
                    static_cast<long long>(t.expires_at));
        std::fflush(stdout);
    };
    opts.on_error = [](const std::string& reason) {
        std::printf("example_bot: rejected message: %s\n", reason.c_str());
        std::fflush(stdout);
    };

    trs::TokenReceiver receiver(std::move(opts));
    std::string err;
    if (!receiver.start(&err)) {
        std::fprintf(stderr, "example_bot: %s\n", err.c_str());
        return 1;
    }
    std::printf("example_bot: listening on %s\n", receiver.bound_address().c_str());
    std::fflush(stdout);

    int sig = 0;
    if (sigwait(&stop_signals, &sig) != 0) {
        std::fprintf(stderr, "example_bot: sigwait failed\n");
        receiver.stop();
        return 1;
    }
    receiver.stop();
    std::printf("example_bot: stopped (signal %d)\n", sig);
    std::fflush(stdout);
    return 0;
}
