# A service manager's notify socket for test/core/ops/sd-notify.test.ts: binds the unix datagram socket argv[1] (a
# leading "@": an abstract name), prints "bound", then for each datagram "got <sender pid> <text>" (SO_PASSCRED:
# the pid the kernel vouches for, as systemd reads it for NotifyAccess=main). With --full as argv[2] it reads
# nothing: it fills its own queue from a second socket until the kernel refuses one more, prints "full", and
# sleeps (a hung manager).
import socket, struct, sys, time

addr = sys.argv[1]
bound = "\0" + addr[1:] if addr.startswith("@") else addr
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(bound)
print("bound", flush=True)
if sys.argv[2:] == ["--full"]:
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        while True:
            filler.sendto(b"STATUS=filler", socket.MSG_DONTWAIT, bound)
    except BlockingIOError:
        print("full", flush=True)
    while True:
        time.sleep(3600)
while True:
    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = next(struct.unpack("iII", d)[0] for lvl, t, d in anc if t == socket.SCM_CREDENTIALS)
    print("got %d %s" % (pid, data.decode().replace("\n", "\\n")), flush=True)
