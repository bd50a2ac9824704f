"""A slotbus worker in Python: ctypes over libslotbus's C ABI (csrc/slotbus.h, docs/PROTOCOL.md).

Standard library only, Python >= 3.8, nothing to compile: it loads the libslotbus.so the npm package ships.

    import slotbus

    with slotbus.Worker.connect("my-bus") as worker:
        @worker.route("/echo")
        def echo(req):
            return req.body              # a read-only view of the request, valid until the handler returns

        worker.serve()                   # until the hub goes away or SIGTERM

Handlers run on a pool of threads, so one that blocks does not hold up the others; the serving thread alone
talks to the library. A request the hub gives up (its caller aborted or timed out) shows as `req.cancelled`;
`req.wait_cancelled(seconds)` sleeps until then.
"""

import ctypes
import errno as _errno
import os
import platform
import queue
import re
import select
import signal
import threading
import time
import traceback
from collections import deque

__all__ = [
    "Worker",
    "Request",
    "Response",
    "SlotbusError",
    "NativeLibraryError",
    "InvalidNameError",
    "HubNotFoundError",
    "PeerRefusedError",
    "HubFullError",
    "ConnectTimeoutError",
    "ProtocolError",
    "HubGoneError",
    "library_path",
]

ABI_VERSION = 25  # SB_ABI_VERSION in csrc/slotbus.h; the library must match (test/native/python-worker.test.ts checks)
SB_ECORRUPT = 1000
SB_ESOCKDIR = 1002  # the portable backend's socket directory cannot be used (PROTOCOL.md §13.2)
KIND_RAW, KIND_HTTP = 0, 1
RESP_ERROR = 1
STATUS_GAVE_UP = 499  # the answer to a request the hub gave up; it is discarded (PROTOCOL.md §3)
MAX_STACK_CHARS = 8192
HUB_GONE_GRACE_S = 2.0  # how long serve() waits for handlers once the hub is gone, before it returns without them

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
# What a bus name may not start with: its socket file would be a topic's or an election's (PROTOCOL.md §1.1), as
# OTHER_FILES in src/core/wire/codec.ts.
_OTHER_FILES = ("topic.", "fronts.", "fronts-cover.", "bridge.")
HELLO_MS = 5000  # the longest connect waits for a hub's hello once it accepted
MIN_HELLO_MS = 1000  # and the least, however little is left of wait_for_hub_ms: a live hub gets time to answer
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+\Z")
_BAD_VALUE = re.compile(r"[\0\r\n]")


# ---- errors ----


class SlotbusError(Exception):
    """Base of every slotbus error. `errno` is the positive errno the library returned (or None), and
    `errno_name` its name ("ECONNREFUSED", "SB_ECORRUPT", …)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.errno = code
        self.errno_name = _errno_name(code) if code is not None else None


class NativeLibraryError(SlotbusError):
    """libslotbus.so is missing, not loadable, or of another ABI version."""


class InvalidNameError(SlotbusError, ValueError):
    """A bus name is 1 to 64 of A-Z a-z 0-9 . _ -, not starting with topic., fronts., fronts-cover. or bridge.
    (EINVAL)."""


class HubNotFoundError(SlotbusError):
    """No hub listens on that name (ECONNREFUSED): start it, or connect with a longer wait_for_hub_ms."""


class PeerRefusedError(SlotbusError):
    """The hub refused this uid, or the hub is not of the uid expected (EPERM)."""


class HubFullError(SlotbusError):
    """The hub is at its connection cap (EUSERS)."""


class ConnectTimeoutError(SlotbusError):
    """The hub accepted but its hello did not arrive in time (ETIMEDOUT)."""


class ProtocolError(SlotbusError):
    """The hub broke the protocol (SB_ECORRUPT): its region, hello or fds are not what PROTOCOL.md says."""


class HubGoneError(SlotbusError):
    """The hub went away (EPIPE)."""


_ERRORS = {
    _errno.EINVAL: InvalidNameError,
    _errno.ECONNREFUSED: HubNotFoundError,
    _errno.ENOENT: HubNotFoundError,
    _errno.EPERM: PeerRefusedError,
    _errno.EUSERS: HubFullError,
    _errno.ETIMEDOUT: ConnectTimeoutError,
    SB_ECORRUPT: ProtocolError,
    _errno.EPIPE: HubGoneError,
}
# The hub may be starting or restarting: these mean "try again" while connect's wait lasts.
_RETRY = {_errno.ECONNREFUSED, _errno.ENOENT, _errno.ECONNRESET, _errno.EPIPE, _errno.EAGAIN}


def _errno_name(code):
    named = {SB_ECORRUPT: "SB_ECORRUPT", SB_ESOCKDIR: "SB_ESOCKDIR"}
    return named.get(code) or _errno.errorcode.get(code, "E%d" % code)


_HINTS = {
    _errno.ECONNREFUSED: "start the hub first, or connect with a longer wait_for_hub_ms",
    _errno.EPERM: "run the worker as the hub's user, or have the hub allow this uid",
    _errno.EUSERS: "the hub is at its connection cap: raise it, or stop a worker",
    _errno.EMFILE: "the hub (or this worker) is at its process's open-file limit: raise ulimit -n, or run fewer workers",
    _errno.ENFILE: "the system is at its open-file limit: raise fs.file-max, or run fewer workers",
    _errno.ETIMEDOUT: "the hub accepted but did not finish its hello: is it stopped or overloaded?",
    SB_ECORRUPT: "the hub is not a slotbus hub of protocol 1, or broke it",
}


def _error(code, what):
    name = _errno_name(code)
    reason = "the hub broke the protocol" if code == SB_ECORRUPT else os.strerror(code)
    hint = _HINTS.get(code)
    message = "%s: %s (%s)%s" % (what, reason, name, "; " + hint if hint else "")
    return _ERRORS.get(code, SlotbusError)(message, code)


# ---- the library ----


class _Msg(ctypes.Structure):
    """sb_msg in csrc/slotbus.h, field for field."""

    _fields_ = [
        ("slot", ctypes.c_int32),
        ("kind", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("status", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("head_len", ctypes.c_uint32),
        ("body_len", ctypes.c_uint32),
        ("body_off", ctypes.c_uint32),
        ("gen", ctypes.c_uint32),
        ("pos", ctypes.c_uint32),
        ("window", ctypes.c_uint32),
    ]


_c, _u32, _i32, _int, _ptr = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int32, ctypes.c_int, ctypes.c_void_p
_SIGNATURES = {
    # name: (result, argument types)
    "sb_abi_version": (_u32, []),
    "sb_connect": (_c, [ctypes.c_char_p, ctypes.c_int64, _int, ctypes.POINTER(_int)]),
    "sb_close": (None, [_c]),
    "sb_detach": (_int, [_c]),
    "sb_region": (_ptr, [_c]),
    "sb_region_size": (ctypes.c_double, [_c]),
    "sb_arena_size": (_u32, [_c]),
    "sb_arena_offset": (ctypes.c_double, [_c, _u32, _int]),
    "sb_socket_fd": (_int, [_c]),
    "sb_doorbell_fd": (_int, [_c]),
    "sb_peer_pid": (_i32, [_c]),
    "sb_last_msg": (ctypes.POINTER(_Msg), [_c]),
    "sb_error": (ctypes.c_char_p, [_c]),
    "sb_socket_dir_error": (ctypes.c_char_p, []),
    "sb_worker_poll": (_int, [_c]),
    "sb_worker_complete": (_int, [_c, _u32, _u32, _u32, _u32, _u32, _u32]),
    "sb_worker_cancel_seq": (_u32, [_c]),
    "sb_worker_cancelled": (_int, [_c, _u32, _u32]),
    "sb_park": (_int, [_c]),
    "sb_unpark": (None, [_c]),
    "sb_wait": (_int, [_c, _int, _int]),
}

_lib = None
_lib_lock = threading.Lock()


def _platform():
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    system = platform.system()
    if system not in ("Linux", "Darwin") or arch is None:
        raise NativeLibraryError(
            "slotbus runs on Linux and macOS, x64/arm64; this is %s-%s. Set SLOTBUS_LIB if you built libslotbus "
            "yourself." % (system, machine)
        )
    if system == "Darwin":  # the portable backend's prebuild (docs/PROTOCOL.md §13); not yet run on a Mac
        return "darwin-%s" % arch
    return "linux-%s%s" % (arch, "-musl" if _is_musl(arch) else "")


def _is_musl(arch):
    # As src/native/lib-path.ts: this interpreter's C library, else a musl loader and no glibc one.
    if platform.libc_ver()[0] == "glibc":
        return False
    loader = "x86_64" if arch == "x64" else "aarch64"
    glibc = "/lib64/ld-linux-x86-64.so.2" if arch == "x64" else "/lib/ld-linux-aarch64.so.1"
    return os.path.exists("/lib/ld-musl-%s.so.1" % loader) and not os.path.exists(glibc)


def library_path():
    """Path of libslotbus.so: $SLOTBUS_LIB, else the package's prebuild for this platform (the order
    src/native/lib-path.ts uses)."""
    override = os.environ.get("SLOTBUS_LIB")
    if override:
        if os.path.exists(override):
            return override
        raise NativeLibraryError(
            "SLOTBUS_LIB is set to %s, which does not exist. Point it at a built libslotbus.so or unset it." % override
        )
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    plat = _platform()
    name = "libslotbus.dylib" if plat.startswith("darwin") else "libslotbus.so"
    path = os.path.join(package, "prebuilds", plat, name)
    if not os.path.exists(path):
        raise NativeLibraryError(
            "No libslotbus for %s: looked at %s (and SLOTBUS_LIB, unset). Run `npm run build` in %s, or set "
            "SLOTBUS_LIB to a libslotbus.so you built." % (plat, path, package)
        )
    return path


def _library():
    global _lib
    with _lib_lock:
        if _lib is None:
            path = library_path()
            try:
                lib = ctypes.CDLL(path)
                for name, (restype, argtypes) in _SIGNATURES.items():
                    fn = getattr(lib, name)
                    fn.restype, fn.argtypes = restype, argtypes
            except (OSError, AttributeError) as e:
                raise NativeLibraryError("%s is not a usable libslotbus: %s" % (path, e)) from e
            version = lib.sb_abi_version()
            if version != ABI_VERSION:
                raise NativeLibraryError(
                    "%s has ABI version %d, this module speaks %d. Use the slotbus.py shipped with that library, "
                    "or point SLOTBUS_LIB at a libslotbus.so of this version." % (path, version, ABI_VERSION)
                )
            _lib = lib
        return _lib


# ---- requests and responses ----


class Response:
    """A handler's answer with a status or headers; a handler may also return bytes, str, a buffer or None."""

    __slots__ = ("body", "status", "headers")

    def __init__(self, body=b"", status=200, headers=None):
        self.body, self.status, self.headers = body, status, headers or {}


class Request:
    """One request. `body` is a read-only memoryview of the request in shared memory: no copy, valid until the
    handler returns (`bytes(req.body)` to keep it). `kind` is "http" or "raw" (bus.call); raw requests have no
    method, path or headers."""

    __slots__ = ("kind", "id", "method", "path", "_head", "_headers", "body", "slot", "gen", "_worker", "_cancelled")

    def __init__(self, worker, msg, head, body):
        self._worker, self.slot, self.gen, self.id = worker, msg.slot, msg.gen, msg.id
        self.kind = "http" if msg.kind == KIND_HTTP else "raw"
        self._head, self._headers, self.body = head, None, body
        self.method = self.path = ""
        if msg.kind == KIND_HTTP:
            end = head.find(b"\0")
            after = head.find(b"\0", end + 1) if end >= 0 else -1
            if after < 0:
                raise ValueError("bad http head: no method and path")
            self.method, self.path = head[:end].decode(), head[end + 1 : after].decode()
            self._head = head[after + 1 :]
        self._cancelled = threading.Event()

    @property
    def headers(self):
        """Request headers, names lower-case, as a dict (parsed on first use)."""
        if self._headers is None:
            fields = self._head.split(b"\0")[:-1]
            self._headers = {fields[i].decode("latin-1"): fields[i + 1].decode("latin-1") for i in range(0, len(fields) - 1, 2)}
        return self._headers

    def text(self, encoding="utf-8"):
        """The body decoded (a copy)."""
        return str(self.body, encoding)

    @property
    def cancelled(self):
        """True once the hub gave this request up (its caller aborted or timed out) or the hub went away."""
        if not self._cancelled.is_set() and self._worker._cancel_requested(self):
            self._cancelled.set()
        return self._cancelled.is_set()

    def wait_cancelled(self, timeout=None):
        """Sleeps until the request is cancelled (True) or `timeout` seconds pass (False)."""
        return self._cancelled.wait(timeout)


def _head_bytes(pairs):
    return b"".join(k + b"\0" + v + b"\0" for k, v in pairs)


def _header_pairs(headers):
    pairs = []
    for name, value in headers.items():
        name, value = str(name).lower(), str(value)
        if not _TOKEN.match(name):
            raise ValueError("header name %r is not an HTTP token" % name)
        if _BAD_VALUE.search(value):
            raise ValueError("header %s: the value holds NUL, CR or LF" % name)
        try:
            pairs.append((name.encode("ascii"), value.encode("latin-1")))
        except UnicodeEncodeError:
            raise ValueError("header %s: the value is not Latin-1" % name) from None
    return pairs


def _as_bytes_view(body):
    if body is None:
        return memoryview(b"")
    if isinstance(body, str):
        return memoryview(body.encode())
    try:
        view = memoryview(body)
    except TypeError:
        raise TypeError(
            "a handler returns bytes, str, a buffer, None or slotbus.Response, not %s" % type(body).__name__
        ) from None
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


class _PayloadTooLarge(Exception):
    # Answered with the pair slotbus-error PayloadTooLargeError, which the hub reports as its own PayloadTooLargeError
    # (PROTOCOL.md §6); a handler's exception of any name never carries that pair.
    name = "PayloadTooLargeError"


def _align8(n):
    return (n + 7) & ~7


# ---- the worker ----


class Worker:
    """A worker connected to one hub. Register handlers with route()/raw(), then serve()."""

    def __init__(self, chan, name, threads):
        lib = _library()
        self.name = name
        self._lib, self._ch = lib, chan
        self._msg = lib.sb_last_msg(chan).contents
        size = int(lib.sb_region_size(chan))
        self._region = memoryview((ctypes.c_char * size).from_address(lib.sb_region(chan))).cast("B")
        self._arena = lib.sb_arena_size(chan)
        self.hub_pid = lib.sb_peer_pid(chan)
        self._routes = {}
        self._raw = None
        self._threads = threads
        self._pool = None  # the handler threads while serve() runs
        self._jobs = queue.SimpleQueue()  # (request, response arena offset), None: a thread's end
        self._held = {}  # slot -> Request, while its handler runs
        self._finished = deque()  # (slot, gen, status, flags, head_len, body_len) from handler threads
        self._parked = False
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self._closed = False

    @classmethod
    def connect(cls, name, wait_for_hub_ms=5000, threads=16):
        """Connects to the hub listening on `name`, retrying for `wait_for_hub_ms` (a number >= 0, or
        float("inf")) while there is none yet; a hub that accepts gets what is left of it for its hello, at
        least 1 s and at most 5 s. `threads`: how many handlers may run at once (an int >= 1)."""
        _check_name(name)
        _check_number("wait_for_hub_ms", wait_for_hub_ms, 0, integer=False)
        _check_number("threads", threads, 1)
        lib = _library()
        deadline = time.monotonic() + wait_for_hub_ms / 1000
        while True:
            err = ctypes.c_int(0)
            # a hub that accepted but sends no hello (stopped, overloaded) is given what is left of the wait
            hello_ms = int(min(HELLO_MS, max(MIN_HELLO_MS, (deadline - time.monotonic()) * 1000)))
            chan = lib.sb_connect(name.encode(), -1, hello_ms, ctypes.byref(err))
            if chan:
                return cls(chan, name, threads)
            code = -err.value
            if code not in _RETRY or time.monotonic() >= deadline:
                if code in _RETRY:
                    code = _errno.ECONNREFUSED
                if code == SB_ESOCKDIR:
                    why = lib.sb_socket_dir_error().decode(errors="replace")
                    raise SlotbusError('cannot connect to hub "%s": %s' % (name, why), code)
                waited = " (no hello in %d ms)" % hello_ms if code == _errno.ETIMEDOUT else ""
                raise _error(code, 'cannot connect to hub "%s"%s' % (name, waited))
            time.sleep(0.05)

    def route(self, path, handler=None):
        """Registers `handler(req)` for HTTP requests on `path`, any method; a request's path is matched without
        its query string (req.path keeps it). Usable as a decorator."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError("a route is a path starting with /, not %r" % (path,))

        def register(fn):
            if not callable(fn):
                raise TypeError("a handler is callable, not %s" % type(fn).__name__)
            self._routes[path] = fn
            return fn

        return register if handler is None else register(handler)

    def raw(self, handler):
        """Registers `handler(req)` for raw requests (the hub's bus.call). Usable as a decorator."""
        if not callable(handler):
            raise TypeError("a handler is callable, not %s" % type(handler).__name__)
        self._raw = handler
        return handler

    def stop(self):
        """Asks serve() to return: in-flight handlers see cancellation and are answered, then it closes."""
        self._stopping = True
        try:
            os.write(self._wake_w, b"s")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: serve() wakes anyway

    def serve(self, handle_sigterm=True):
        """Serves requests until the hub goes away or stop() (SIGTERM calls it, when serving on the main
        thread). Raises ProtocolError if the hub breaks the protocol. Closes the worker when it returns."""
        if self._closed:
            raise HubGoneError("this worker is closed", _errno.EPIPE)
        lib, ch = self._lib, self._ch
        previous = None
        if not isinstance(handle_sigterm, bool):
            raise TypeError("handle_sigterm must be a bool, not %s" % type(handle_sigterm).__name__)
        if handle_sigterm and threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda *_: self.stop())
        self._pool = [
            threading.Thread(target=self._handle_jobs, name="slotbus-handler-%d" % i, daemon=True)
            for i in range(self._threads)
        ]
        for thread in self._pool:
            thread.start()
        poller = select.poll()
        bell, sock = lib.sb_doorbell_fd(ch), lib.sb_socket_fd(ch)
        for fd in (bell, sock, self._wake_r):
            poller.register(fd, select.POLLIN)
        seen = lib.sb_worker_cancel_seq(ch)
        hub_gone = False
        try:
            while not self._stopping:
                self._complete_finished()
                seq = lib.sb_worker_cancel_seq(ch)
                if seq != seen:
                    seen = seq
                    for req in list(self._held.values()):
                        if lib.sb_worker_cancelled(ch, req.slot, req.gen) == 1:
                            req._cancelled.set()
                slot = lib.sb_worker_poll(ch)
                if slot >= 0:
                    self._dispatch(slot)
                    continue
                if slot != -1:
                    raise ProtocolError("the hub broke the protocol: %s" % lib.sb_error(ch).decode(), SB_ECORRUPT)
                # Nothing to do: park (PROTOCOL.md §5). The flag tells handler threads to ring the pipe.
                self._parked = True
                if self._finished or lib.sb_park(ch):  # an answer, a request or a cancel came meanwhile
                    self._parked = False
                    continue
                ready = {fd for fd, _ in poller.poll()}
                self._parked = False
                lib.sb_unpark(ch)
                if self._wake_r in ready:
                    _drain(self._wake_r)
                # sb_wait reads the hub's control bytes and tells EOF from them
                if sock in ready and lib.sb_wait(ch, 0, 0) == -_errno.EPIPE:
                    hub_gone = True
                    break
        except ProtocolError:
            hub_gone = True  # nothing more goes to a hub that broke the protocol
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self._finish(hub_gone)

    def _finish(self, hub_gone):
        # In-flight handlers are told to stop; while the hub is there their answers still go back.
        for req in list(self._held.values()):
            req._cancelled.set()
        for _ in self._pool:
            self._jobs.put(None)
        # With the hub gone no answer goes anywhere: a handler that ignores its cancellation is waited for a
        # while, then left to its daemon thread, which ends with the process.
        deadline = time.monotonic() + (HUB_GONE_GRACE_S if hub_gone else float("inf"))
        for thread in self._pool:
            thread.join(None if not hub_gone else max(0.0, deadline - time.monotonic()))
        stuck = any(thread.is_alive() for thread in self._pool)
        self._pool = None
        if stuck:
            self._closed = True  # the region stays mapped and the channel open: a handler may still use them
            return
        try:
            if not hub_gone:
                self._complete_finished()
        finally:
            self.close()

    def close(self):
        """Disconnects from the hub and frees the region. serve() does this when it returns."""
        if self._closed:
            return
        if self._pool is not None:
            raise RuntimeError("close() while serve() runs: call stop()")
        self._closed = True
        self._region.release()
        self._lib.sb_close(self._ch)
        self._ch = None
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- the serving thread ----

    def _cancel_requested(self, req):
        ch = self._ch
        return ch is not None and self._lib.sb_worker_cancelled(ch, req.slot, req.gen) == 1

    def _dispatch(self, slot):
        m = self._msg
        base = int(self._lib.sb_arena_offset(self._ch, slot, 0))
        head = bytes(self._region[base : base + m.head_len])
        body = self._region[base + m.body_off : base + m.body_off + m.body_len].toreadonly()
        out = int(self._lib.sb_arena_offset(self._ch, slot, 1))
        try:
            req = Request(self, m, head, body)
        except (ValueError, UnicodeDecodeError) as e:
            self._answer_error(slot, m.gen, out, e)
            self._complete_finished()
            return
        self._held[slot] = req
        self._jobs.put((req, out))

    def _complete_finished(self):
        lib, ch = self._lib, self._ch
        while self._finished:
            slot, gen, status, flags, head_len, body_len = self._finished.popleft()
            self._held.pop(slot, None)
            r = lib.sb_worker_complete(ch, slot, gen, status, flags, head_len, body_len)
            if r != 0:
                raise _error(-r, "could not answer slot %d" % slot)

    # ---- handler threads ----

    def _handle_jobs(self):
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._run(*job)
            except BaseException:  # noqa: B036 - the error answer itself failed: say so, keep the thread
                traceback.print_exc()

    def _run(self, req, out):
        try:
            if req.cancelled:  # given up while it waited for a thread
                self._answer(req, out, STATUS_GAVE_UP, 0, [], memoryview(b""))
                return
            result = self._call(req)
            if isinstance(result, Response):
                status, pairs, body = result.status, _header_pairs(result.headers), _as_bytes_view(result.body)
            else:
                status, pairs, body = (200 if req.kind == "http" else 0), [], _as_bytes_view(result)
            if not isinstance(status, int) or not 0 <= status <= 0xFFFFFFFF:
                raise ValueError("a status is an int from 0 to 2**32-1, not %r" % (status,))
            self._answer(req, out, status, 0, pairs, body)
        except BaseException as e:  # noqa: B036 - any failure is the caller's error answer, never a lost slot
            self._answer_error(req.slot, req.gen, out, e)
        finally:
            try:
                req.body.release()  # a view kept past the handler fails loudly instead of reading a reused slot
            except BufferError:
                pass  # something still exports it (a ctypes or numpy view): it stays valid until close()

    def _call(self, req):
        if req.kind == "raw":
            if self._raw is None:
                raise LookupError("this worker takes no raw requests (register one with worker.raw)")
            return self._raw(req)
        handler = self._routes.get(req.path.split("?", 1)[0])
        if handler is None:
            return Response("no handler for %s %s" % (req.method, req.path), status=404)
        return handler(req)

    def _answer(self, req, out, status, flags, pairs, body):
        head = _head_bytes(pairs)
        off = _align8(len(head))
        if off + len(body) > self._arena:
            raise _PayloadTooLarge(
                "the answer is %d bytes with its headers, the slot's arena %d; raise maxBodyBytes on the hub"
                % (off + len(body), self._arena)
            )
        arena = self._region[out : out + off + len(body)]
        arena[: len(head)] = head
        arena[len(head) : off] = bytes(off - len(head))
        arena[off:] = body
        self._finish_slot(req.slot, req.gen, status, flags, len(head), len(body))

    def _answer_error(self, slot, gen, out, e):
        """An error answer (PROTOCOL.md §6): pairs `name`, `slotbus-error` (slotbus's own) and `stack`, the message
        as the body, cut to fit."""
        own = isinstance(e, _PayloadTooLarge)
        name = e.name if own else type(e).__name__
        stack = "".join(traceback.format_exception(type(e), e, e.__traceback__))[:MAX_STACK_CHARS]
        pairs = [(b"name", name.encode())] + ([(b"slotbus-error", name.encode())] if own else [])
        head = _head_bytes(pairs + [(b"stack", stack.replace("\0", "").encode("utf-8", "replace"))])
        if _align8(len(head)) + 64 > self._arena:
            head = b""
        off = _align8(len(head))
        message = str(e).encode("utf-8", "replace")[: self._arena - off]
        arena = self._region[out : out + off + len(message)]
        arena[: len(head)] = head
        arena[len(head) : off] = bytes(off - len(head))
        arena[off:] = message
        self._finish_slot(slot, gen, 500, RESP_ERROR, len(head), len(message))

    def _finish_slot(self, slot, gen, status, flags, head_len, body_len):
        self._finished.append((slot, gen, status, flags, head_len, body_len))
        if self._parked:  # read after the append: a serving thread that parks later sees the deque non-empty
            try:
                os.write(self._wake_w, b"w")
            except BlockingIOError:
                pass  # full: it is awake already


def _check_name(name):
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidNameError("bad bus name %r: 1 to 64 of A-Z a-z 0-9 . _ -" % (name,), _errno.EINVAL)
    taken = next((prefix for prefix in _OTHER_FILES if name.startswith(prefix)), None)
    if taken:
        raise InvalidNameError(
            'bus name "%s" starts with "%s": its socket file would be that of a %s (slotbus.%s); pick another name'
            % (name, taken, "topic" if taken == "topic." else "front, cover or bridge election", name),
            _errno.EINVAL,
        )


def _check_number(what, value, minimum, integer=True):
    """`value` is an int (or, with integer=False, a float too, inf allowed) >= minimum: else a TypeError for the
    wrong type and a ValueError for the wrong value, naming the option."""
    kind = "an int" if integer else "a number"
    types = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, types):
        raise TypeError("%s must be %s >= %d, not %s" % (what, kind, minimum, type(value).__name__))
    if not value >= minimum:  # NaN too
        raise ValueError("%s must be %s >= %d, not %r" % (what, kind, minimum, value))


def _drain(fd):
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass

