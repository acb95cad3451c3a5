"""The server's routes, one router per part: the page, the jobs, the one-image endpoint, health."""
