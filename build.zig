// The one build path for every C program in the repo. Steps (zig build --list-steps):
//   install (default)   prebuilds/<os>-<arch>[-musl]/libslotbus.{so,dylib} for all six release targets
//   native              the prebuild for this host only
//   examples            zig-out/bin/c-worker           (examples/c-worker; -Dc-worker=FILE.c builds another source)
//   floor               zig-out/bin/floor              (bench/slots/floor.c, the bench's C-to-C floor)
//   lease-handover      zig-out/bin/lease-handover     (bench/leases/handover.c, lease handover in C alone)
//   stress              zig-out/bin/stress             (csrc/test/stress.c, the slot state machine under load)
//   stress-tsan         zig-out/bin/stress-tsan        (the same under ThreadSanitizer)
//   stress-asan         zig-out/bin/stress-asan        (AddressSanitizer, built by -Dsanitizer-cc, default gcc)
//   stress-ubsan        zig-out/bin/stress-ubsan       (UndefinedBehaviorSanitizer, built by -Dsanitizer-cc)
//   hostile             zig-out/bin/hostile            (csrc/test/hostile.c, a worker against a hostile hub)
//   lease-stress[-tsan] zig-out/bin/lease-stress[-tsan] (csrc/test/lease-stress.c, the lease table under contention)
//   hostile-asan        zig-out/bin/hostile-asan       (the same under AddressSanitizer + UBSan)
//   topic-stress[-tsan] zig-out/bin/topic-stress[-tsan] (csrc/test/topic_stress.c, the topic ring under load)
//   recorder-stress[-tsan] zig-out/bin/recorder-stress[-tsan] (csrc/test/recorder_stress.c, the flight recorder's seqlock)
//   pid-at              zig-out/bin/pid-at             (csrc/test/pid_at.c, runs a program under a given pid)
//   lib-abi0            zig-out/lib/libslotbus-abi0.so (claims ABI version 0: the loader test's wrong library)
//   test-c              all of the C test programs above
// zig's bundled clang has no AddressSanitizer runtime and only a trapping UBSan (no report), so those variants
// are compiled by a system compiler (gcc or clang), still from here.
const std = @import("std");

// libslotbus's C sources, each listed once: the slot channel, lease contests and topics by role
// (csrc/lease_internal.h and csrc/topic_internal.h say which file does what). The ASan/UBSan programs exercise the slot channel alone.
// The platform seam is platform.c over two schemes (csrc/scheme.h) over one OS file per OS (csrc/os.h); a file for
// another OS than the target's compiles to nothing. host.c gives the public calls the seam answers, from above it.
const slot_sources = [_][]const u8{
    "csrc/slot_open.c",
    "csrc/control.c",
    "csrc/slot_transitions.c",
    "csrc/stream.c",
    "csrc/park.c",
    "csrc/idle.c",
    "csrc/recorder.c",
    "csrc/host.c",
    "csrc/platform.c",
    "csrc/scheme_linux.c",
    "csrc/scheme_portable.c",
    "csrc/scheme_dir.c",
    "csrc/sockdir.c",
    "csrc/os_linux.c",
    "csrc/os_darwin.c",
    "csrc/doubles.c",
};
const slot_headers = [_][]const u8{ "csrc/slotbus.h", "csrc/slot_internal.h", "csrc/recorder.h", "csrc/sys.h", "csrc/shm.h", "csrc/platform.h", "csrc/scheme.h", "csrc/os.h" };
const c_sources = slot_sources ++ [_][]const u8{
    "csrc/lease_open.c",
    "csrc/lease_claim.c",
    "csrc/lease_wait.c",
    "csrc/topic_open.c",
    "csrc/topic_ring.c",
    "csrc/topic_publish.c",
    "csrc/topic_subscribe.c",
};
const c_flags = [_][]const u8{ "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror" };

const Release = struct { query: []const u8, dir: []const u8 };

// glibc 2.27 (Ubuntu 18.04, Debian 10) is the oldest we promise; zig links against stubs of exactly that version.
const releases = [_]Release{
    .{ .query = "x86_64-linux-gnu.2.27", .dir = "linux-x64" },
    .{ .query = "aarch64-linux-gnu.2.27", .dir = "linux-arm64" },
    .{ .query = "x86_64-linux-musl", .dir = "linux-x64-musl" },
    .{ .query = "aarch64-linux-musl", .dir = "linux-arm64-musl" },
    // libc only, so zig needs no SDK; the portable backend (docs/PROTOCOL.md §13). zig signs them ad hoc.
    .{ .query = "aarch64-macos.11.0", .dir = "darwin-arm64" },
    .{ .query = "x86_64-macos.11.0", .dir = "darwin-x64" },
};

pub fn build(b: *std.Build) void {
    const optimize = b.option(std.builtin.OptimizeMode, "optimize", "Optimization mode (default ReleaseFast)") orelse .ReleaseFast;
    const sanitizer_cc = b.option([]const u8, "sanitizer-cc", "C compiler for the ASan/UBSan builds (default gcc)") orelse "gcc";
    const c_worker = b.option([]const u8, "c-worker", "Source of the examples step (default examples/c-worker/worker.c)");
    const host = b.graph.host;

    const native = b.step("native", "Build prebuilds/ for the host only");
    var host_supported = false;

    for (releases) |release| {
        const query = std.Target.Query.parse(.{ .arch_os_abi = release.query }) catch @panic("bad target");
        const target = b.resolveTargetQuery(query);
        const lib = b.addSharedLibrary(.{
            .name = "slotbus",
            .target = target,
            .optimize = optimize,
            .strip = optimize != .Debug,
        });
        addCore(lib);

        // Into the source tree, whatever --prefix says: prebuilds/ is git-ignored but packed by npm.
        const prebuild = b.addUpdateSourceFiles();
        const ext = if (target.result.os.tag == .macos) "dylib" else "so";
        prebuild.addCopyFileToSource(lib.getEmittedBin(), b.fmt("prebuilds/{s}/libslotbus.{s}", .{ release.dir, ext }));
        b.getInstallStep().dependOn(&prebuild.step);

        const t = target.result;
        if (t.cpu.arch == host.result.cpu.arch and t.os.tag == host.result.os.tag and t.abi.isMusl() == host.result.abi.isMusl()) {
            native.dependOn(&prebuild.step);
            host_supported = true;
        }
    }
    if (!host_supported) native.dependOn(&b.addFail("no release target matches this host").step);

    // A host libslotbus that claims ABI version 0, so the loader's refusal of a mismatching library can be tested.
    const mismatch = b.addSharedLibrary(.{ .name = "slotbus-abi0", .target = host, .optimize = optimize });
    mismatch.addCSourceFiles(.{ .files = &c_sources, .flags = &(c_flags ++ [_][]const u8{"-DSB_ABI_VERSION=0u"}) });
    mismatch.addIncludePath(b.path("csrc"));
    mismatch.linkLibC();
    b.step("lib-abi0", "Build zig-out/lib/libslotbus-abi0.so (ABI version 0, for the loader test)").dependOn(&b.addInstallArtifact(mismatch, .{}).step);

    const worker_source: std.Build.LazyPath = if (c_worker) |p| .{ .cwd_relative = p } else b.path("examples/c-worker/worker.c");
    _ = addHostExe(b, "examples", "c-worker", worker_source, optimize, false);

    const floor = b.addExecutable(.{ .name = "floor", .target = host, .optimize = optimize });
    floor.addCSourceFiles(.{ .files = &.{"bench/slots/floor.c"}, .flags = &c_flags });
    floor.linkLibC();
    b.step("floor", "Build zig-out/bin/floor, the bench's C-to-C floor").dependOn(&b.addInstallArtifact(floor, .{}).step);
    const pid_at = b.addExecutable(.{ .name = "pid-at", .target = host, .optimize = optimize });
    pid_at.addCSourceFiles(.{ .files = &.{"csrc/test/pid_at.c"}, .flags = &c_flags });
    pid_at.linkLibC();
    b.step("pid-at", "Build zig-out/bin/pid-at, which runs a program under a given pid").dependOn(&b.addInstallArtifact(pid_at, .{}).step);
    _ = addHostExe(b, "lease-handover", "lease-handover", b.path("bench/leases/handover.c"), optimize, false);

    const test_c = b.step("test-c", "Build every C test program");
    const tests = [_]*std.Build.Step{
        addHostExe(b, "stress", "stress", b.path("csrc/test/stress.c"), optimize, false),
        addHostExe(b, "stress-tsan", "stress-tsan", b.path("csrc/test/stress.c"), optimize, true),
        addSanitized(b, "stress-asan", "csrc/test/stress.c", sanitizer_cc, "address"),
        addSanitized(b, "stress-ubsan", "csrc/test/stress.c", sanitizer_cc, "undefined"),
        addHostExe(b, "hostile", "hostile", b.path("csrc/test/hostile.c"), optimize, false),
        addHostExe(b, "lease-stress", "lease-stress", b.path("csrc/test/lease-stress.c"), optimize, false),
        addHostExe(b, "lease-stress-tsan", "lease-stress-tsan", b.path("csrc/test/lease-stress.c"), optimize, true),
        addHostExe(b, "topic-stress", "topic-stress", b.path("csrc/test/topic_stress.c"), optimize, false),
        addHostExe(b, "topic-stress-tsan", "topic-stress-tsan", b.path("csrc/test/topic_stress.c"), optimize, true),
        addHostExe(b, "recorder-stress", "recorder-stress", b.path("csrc/test/recorder_stress.c"), optimize, false),
        addHostExe(b, "recorder-stress-tsan", "recorder-stress-tsan", b.path("csrc/test/recorder_stress.c"), optimize, true),
        addSanitized(b, "hostile-asan", "csrc/test/hostile.c", sanitizer_cc, "address,undefined"),
    };
    for (tests) |step| test_c.dependOn(step);
}

fn addCore(c: *std.Build.Step.Compile) void {
    c.addCSourceFiles(.{ .files = &c_sources, .flags = &c_flags });
    c.addIncludePath(c.step.owner.path("csrc"));
    c.linkLibC();
}

fn addHostExe(b: *std.Build, step_name: []const u8, exe_name: []const u8, main: std.Build.LazyPath, optimize: std.builtin.OptimizeMode, tsan: bool) *std.Build.Step {
    const exe = b.addExecutable(.{
        .name = exe_name,
        .target = b.graph.host,
        .optimize = optimize,
        .sanitize_thread = tsan,
        .strip = false, // sanitizer reports and crashes name the line
    });
    addCore(exe);
    exe.addCSourceFile(.{ .file = main, .flags = &c_flags });
    const step = b.step(step_name, b.fmt("Build zig-out/bin/{s} for the host", .{exe_name}));
    step.dependOn(&b.addInstallArtifact(exe, .{}).step);
    return step;
}

/// A test program and the slot channel compiled by a system compiler with -fsanitize=`sanitizers`; any report aborts.
fn addSanitized(b: *std.Build, name: []const u8, main: []const u8, cc: []const u8, sanitizers: []const u8) *std.Build.Step {
    const run = b.addSystemCommand(&.{cc});
    run.addArgs(&c_flags);
    run.addArgs(&.{ "-O1", "-g", "-pthread", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all" });
    run.addArg(b.fmt("-fsanitize={s}", .{sanitizers}));
    run.addPrefixedDirectoryArg("-I", b.path("csrc"));
    run.addFileArg(b.path(main));
    for (slot_sources) |source| run.addFileArg(b.path(source));
    for (slot_headers) |header| run.addFileInput(b.path(header));
    run.addArg("-o");
    const out = run.addOutputFileArg(name);
    const step = b.step(name, b.fmt("Build zig-out/bin/{s} with {s} and -fsanitize={s}", .{ name, cc, sanitizers }));
    step.dependOn(&b.addInstallBinFile(out, name).step);
    return step;
}
