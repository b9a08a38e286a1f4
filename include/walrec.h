/* SPDX-License-Identifier: MIT */
/* walrec: multi-process shared-memory write-ahead-log recorder (umbrella header). */
#ifndef WALREC_H
#define WALREC_H

#include <walrec/common.h>
#include <walrec/recorder.h>
#include <walrec/producer.h>
#include <walrec/reader.h>

#endif
