# lib/: building blocks that know nothing of the WAL.
libwalrec_internal_la_SOURCES += \
	lib/atomics.h \
	lib/clock.c lib/clock.h \
	lib/compiler.h \
	lib/fs.c lib/fs.h \
	lib/log.c lib/log.h \
	lib/stats.c lib/stats.h \
	lib/sys.c lib/sys.h
libwalrec_internal_la_SOURCES += lib/metrics_out.c lib/metrics_out.h
# lib/: shared futex wait/wake.
libwalrec_internal_la_SOURCES += lib/futex.h
libwalrec_internal_la_SOURCES += lib/thread.c lib/thread.h
libwalrec_internal_la_SOURCES += lib/membarrier.h
# lib/: a bounded SPSC ring of pointers between two threads.
libwalrec_internal_la_SOURCES += lib/spsc.h
# lib/: durable lag in time (oldest event not yet durable).
libwalrec_internal_la_SOURCES += lib/lag.h
