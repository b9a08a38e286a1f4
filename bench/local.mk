# bench/: benchmark programs (run through 'walrec bench').
