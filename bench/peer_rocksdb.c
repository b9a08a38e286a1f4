/* SPDX-License-Identifier: MIT */
/* 'walrec bench peers': RocksDB (default options, WAL on) through rocksdb/c.h. */
#include <config.h>

#include <rocksdb/c.h>

#define KV(x) rocksdb_##x
#define KV_NAME "rocksdb"
#include "bench/peer_kv.h"

const struct wr_peer_case wr_peer_rocksdb_cases[] = { KV_CASES("rocksdb") };
