# A service manager's notify socket for test/core/sd-notify.test.ts: binds the unix datagram socket argv[1] (a
# leading "@": an abstract name), prints "bound", then for each datagram "got <sender pid> <text>" (SO_PASSCRED:
# the pid the kernel vouches for, as systemd reads it for NotifyAccess=main).
import socket, struct, sys

addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
print("bound", flush=True)
while True:
    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = next(struct.unpack("iII", d)[0] for lvl, t, d in anc if t == socket.SCM_CREDENTIALS)
    print("got %d %s" % (pid, data.decode().replace("\n", "\\n")), flush=True)
