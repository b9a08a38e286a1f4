# tools/: the walrec program. Subcommands are wired in as they land.
bin_PROGRAMS += walrec
walrec_SOURCES = tools/walrec.c tools/cmd.h tools/util.c tools/cmd_bench.c tools/cmd_verify.c tools/cmd_dump.c
walrec_LDADD = libwalrec-internal.la -lm
walrec_SOURCES += tools/cmd_demo.c tools/cmd_record.c tools/cmd_produce.c
walrec_SOURCES += tools/cmd_stat.c
