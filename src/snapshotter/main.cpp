// The snapshotter binary: everything happens in cli::run, which never throws.
#include "snapshotter/cli/cli.hpp"

int main(int argc, char** argv) {
    return snapshotter::cli::run(argc, argv);
}
