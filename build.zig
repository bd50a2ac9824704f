const std = @import("std");

const c_sources = [_][]const u8{ "csrc/slotbus.c", "csrc/topic.c" };
const c_flags = [_][]const u8{ "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror" };

const Release = struct { query: []const u8, dir: []const u8 };

// glibc 2.27 (Ubuntu 18.04, Debian 10) is the oldest we promise; zig links against stubs of exactly that version.
const releases = [_]Release{
    .{ .query = "x86_64-linux-gnu.2.27", .dir = "linux-x64" },
    .{ .query = "aarch64-linux-gnu.2.27", .dir = "linux-arm64" },
    .{ .query = "x86_64-linux-musl", .dir = "linux-x64-musl" },
    .{ .query = "aarch64-linux-musl", .dir = "linux-arm64-musl" },
};

pub fn build(b: *std.Build) void {
    const optimize = b.option(std.builtin.OptimizeMode, "optimize", "Optimization mode (default ReleaseFast)") orelse .ReleaseFast;
    const tsan = b.option(bool, "tsan", "Build the stress test with ThreadSanitizer") orelse false;
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
        prebuild.addCopyFileToSource(lib.getEmittedBin(), b.fmt("prebuilds/{s}/libslotbus.so", .{release.dir}));
        b.getInstallStep().dependOn(&prebuild.step);

        const t = target.result;
        if (t.cpu.arch == host.result.cpu.arch and t.os.tag == host.result.os.tag and t.abi.isMusl() == host.result.abi.isMusl()) {
            native.dependOn(&prebuild.step);
            host_supported = true;
        }
    }
    if (!host_supported) native.dependOn(&b.addFail("no release target matches this host").step);

    addHostExe(b, "examples", "c-worker", "examples/c-worker/worker.c", optimize, false);
    addHostExe(b, "stress", "stress", "csrc/test/stress.c", optimize, tsan);
    addHostExe(b, "topic-stress", "topic-stress", "csrc/test/topic_stress.c", optimize, tsan);
}

fn addCore(c: *std.Build.Step.Compile) void {
    c.addCSourceFiles(.{ .files = &c_sources, .flags = &c_flags });
    c.addIncludePath(c.step.owner.path("csrc"));
    c.linkLibC();
}

fn addHostExe(b: *std.Build, step_name: []const u8, exe_name: []const u8, main: []const u8, optimize: std.builtin.OptimizeMode, tsan: bool) void {
    const exe = b.addExecutable(.{
        .name = exe_name,
        .target = b.graph.host,
        .optimize = optimize,
        .sanitize_thread = tsan,
    });
    addCore(exe);
    exe.addCSourceFiles(.{ .files = &.{main}, .flags = &c_flags });
    const step = b.step(step_name, b.fmt("Build zig-out/bin/{s} for the host", .{exe_name}));
    step.dependOn(&b.addInstallArtifact(exe, .{}).step);
}
