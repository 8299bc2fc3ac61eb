# rust_conntrack: user-facing targets. The module itself is built by Kbuild (see Kbuild)
# in build/<kernel>/, one directory per kernel.
#
#   make              build rust_conntrack.ko (KERNEL=um-debug|um|x86, or KDIR=<your tree>)
#   make install      build and install it where modprobe finds it (Kbuild's modules_install,
#                     then depmod; INSTALL_MOD_PATH=... for a staging root); alias
#                     modules_install
#   make demo         boot a VM (KERNEL=um by default), load the module, send traffic,
#                     show both tables
#   make test         every test: host, lints, KUnit and VM tests on um-debug, x86 and um
#   make bench        benchmarks on um, rust_conntrack beside nf_conntrack: writes
#                     bench/results-<date>.md and bench/cost-vs-table-size.png
#   make setup        install dependencies and build the cached kernels
#   make vm           a shell-less VM run: make vm CMD='cat /proc/net/rust_conntrack'
#   make fmt          format the Rust sources with the kernel's rustfmt settings
#   make clean        remove build/

# KERNEL and KDIR given on the command line reach the scripts through the environment.

.PHONY: all module install modules_install demo test bench setup vm fmt clean

all: module

module:
	@scripts/build-module

install modules_install:
	@scripts/build-module --install

demo:
	@scripts/demo

test:
	@scripts/test

bench:
	@scripts/bench

setup:
	@scripts/setup

vm:
	@scripts/vm-run -- $(CMD)

fmt:
	@scripts/check-format --fix

clean:
	rm -rf build host/target
