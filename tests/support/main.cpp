// The Catch2 main for every duet test executable.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
