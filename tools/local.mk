# tools/: the walrec program. Subcommands are wired in as they land.
