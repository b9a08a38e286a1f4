# workers/: background threads of the recorder.
libwalrec_internal_la_SOURCES += \
	workers/meta_coordinator.c workers/meta_coordinator.h \
	workers/segment_maintainer.c workers/segment_maintainer.h \
	workers/segment_preparer.c workers/segment_preparer.h
