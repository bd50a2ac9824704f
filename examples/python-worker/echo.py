"""echo.py NAME: a slotbus worker in Python, over the package's python/slotbus.py (ctypes, no build step).

  POST /echo    answers 200 with the request body, byte for byte
  GET  /sleep   sleeps 10 s and answers "slept"; when the hub gives the request up (its caller aborted or timed
                out) it stops at once, prints "cancelled <request id>" and answers 499 (the hub discards it)
  raw calls     (the hub's bus.call, what `slotbus bench` sends) are echoed too

It prints "sleeping <request id>" when a /sleep starts, and "ready" once connected. It exits 0 when the hub goes
away or on SIGTERM, 1 when it cannot connect, 2 on bad usage.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import slotbus  # noqa: E402  (the package's python/ folder, found from this file)

SLEEP_SECONDS = 10


def say(line):
    print(line, flush=True)


def main(argv):
    if len(argv) != 2:
        print("usage: echo.py NAME", file=sys.stderr)
        return 2
    try:
        worker = slotbus.Worker.connect(argv[1])
    except slotbus.SlotbusError as e:
        print("echo.py: %s" % e, file=sys.stderr)
        return 1

    @worker.route("/echo")
    def echo(req):
        return req.body  # a view of the request in shared memory: copied once, into the answer

    @worker.route("/sleep")
    def sleep(req):
        say("sleeping %d" % req.id)
        if req.wait_cancelled(SLEEP_SECONDS):
            say("cancelled %d" % req.id)
            return slotbus.Response("cancelled", status=499)
        return "slept"

    worker.raw(lambda req: req.body)

    say("ready")
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
