"""The face memory's use cases, over the MemoryStore port (`ports/memory`): what a video's
recognition leaves to remember (`capture`), the vector index snapshot and its single writer
(`vectors`, `snapshot`, `indexer`), searching the past (`search`), forgetting (`forget`),
re-embedding from stored crops (`reembed`) and the audit log of who did which (`audit`)."""
