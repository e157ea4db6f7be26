"""Objects of the standard library that pickle cannot handle alone (views, proxies, files, ...)."""

REDUCERS = {}
