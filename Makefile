# Thin wrapper over CMake; the scripts install missing Debian packages first.
.PHONY: all test test-sanitize test-valgrind demo install clean
all:
	bash scripts/build.sh
test:
	bash scripts/test.sh
test-sanitize:
	bash scripts/test.sh --sanitize
test-valgrind:
	bash scripts/test.sh --valgrind
demo:
	bash scripts/demo.sh
install: all
	cmake --install build
clean:
	rm -rf build build-asan
