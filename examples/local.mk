# examples/: the README's examples, built by 'make check' as a user would
# build them: plain C11, the public headers only, linked to libwalrec.
check_PROGRAMS += examples/embedded examples/producer
WR_EXAMPLE_CPPFLAGS = -I$(top_srcdir)/include
WR_EXAMPLE_CFLAGS = -std=c11 $(WR_WARN_CFLAGS) $(WR_SAN_CFLAGS)
examples_embedded_SOURCES = examples/embedded.c
examples_embedded_CPPFLAGS = $(WR_EXAMPLE_CPPFLAGS)
examples_embedded_CFLAGS = $(WR_EXAMPLE_CFLAGS)
examples_embedded_LDADD = libwalrec.la
examples_producer_SOURCES = examples/producer.c
examples_producer_CPPFLAGS = $(WR_EXAMPLE_CPPFLAGS)
examples_producer_CFLAGS = $(WR_EXAMPLE_CFLAGS)
examples_producer_LDADD = libwalrec.la
TESTS += tests/examples.sh
EXTRA_DIST += tests/examples.sh
TESTS += tests/install_tree.sh
EXTRA_DIST += tests/install_tree.sh
