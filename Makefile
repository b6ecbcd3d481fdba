# The two commands a newcomer runs (see README): `make demo` and `make test`.
.PHONY: demo test setup lint bench

ONCE ?=

setup:
	scripts/setup.sh all

demo:
	ONCE=$(ONCE) scripts/demo.sh

test:
	scripts/test.sh
