"""In-process learned memory: prefix registry, line statistics, coalescing, the byte-bounded LRU."""
