"""A receiving process of ``pacsnode serve`` (:mod:`pacsnode.dimse.workers`), run as
``python -m pacsnode.dimse.worker_process INDEX COUNT SOCKET_FD COUNTS_FD`` with the
pickled settings on standard input. Only the parent starts it."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    """Set the process up, then serve on the inherited socket until SIGTERM."""
    from pacsnode.process_setup import skip_unused_modules

    skip_unused_modules()  # before anything imports pydicom
    import pickle
    import socket

    from pacsnode.dimse import workers

    index, count, sock_fd, slots_fd = (int(a) for a in argv)
    settings = pickle.loads(sys.stdin.buffer.read())
    sock = socket.socket(fileno=sock_fd)
    slots = workers.ConnectionCounts(slots_fd, count)
    workers.run_worker(settings, sock, index, slots)


if __name__ == "__main__":
    main(sys.argv[1:])
