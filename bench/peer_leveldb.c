/* SPDX-License-Identifier: MIT */
/* 'walrec bench peers': LevelDB (default options) through leveldb/c.h. */
#include <config.h>

#include <leveldb/c.h>

#define KV(x) leveldb_##x
#define KV_NAME "leveldb"
#include "bench/peer_kv.h"

const struct wr_peer_case wr_peer_leveldb_cases[] = { KV_CASES("leveldb") };
