import Foundation
import Glibc
import Logging
import Testing

@testable import Imaging
import SelfCalSupport

// Fault injection for the process runner: each script in FaultScripts/ misbehaves on purpose
// (stalls after its last line, ignores SIGTERM, leaves a helper behind, crashes, floods, waits
// forever), and every test checks that no process of the run is left alive afterwards.
//
// Checks here read /proc and call kill(2) themselves rather than through the runner's helpers,
// so that a bug in those cannot hide itself.

@Suite("ProcessRunner")
struct ProcessRunnerTests {
    // MARK: (1) WSClean hangs after "Cleaning up temporary files..."

    @Test("a tool that hangs after its last line is stopped by the stall watchdog",
          .timeLimit(.minutes(1)))
    func stallAfterCleanup() async throws {
        let dir = try TemporaryDirectory()
        let lines = Lines()
        let spec = ProcessSpec(
            script("stall_after_cleanup.sh"), logPath: dir.url("wsclean.log"),
            timeout: .seconds(60), stallTimeout: .seconds(1), grace: .seconds(20))
        let clock = ContinuousClock()
        let start = clock.now
        let result = try await ProcessRunner().run(spec) { lines.append($0) }
        let elapsed = start.duration(to: clock.now)

        #expect(result.outcome == .stalled)
        #expect(result.status == .signalled(SIGTERM))
        #expect(result.outputTail.hasSuffix("Cleaning up temporary files...\n"))
        #expect(result.stalled(afterPrinting: "Cleaning up temporary files..."))
        #expect(!result.stalled(afterPrinting: "Writing model data..."))
        #expect(lines.all.contains("Cleaning up temporary files..."))
        // The progress line was passed on while still unfinished, then finished.
        #expect(lines.all.contains { $0.contains("10%") && !$0.contains("100%") })
        #expect(lines.all.contains { $0.hasSuffix("100%") })
        // About 0.8 s of progress, 1 s of silence, then SIGTERM to the group ends it at once,
        // long before the 20 s grace would (generous bounds: the machine may be loaded).
        #expect(elapsed >= .seconds(1.5))
        #expect(elapsed < .seconds(12))
        #expect(throws: PipelineError.self) { try result.checked() }
        await expectGroupGone(result.processGroup)
    }

    // MARK: (2) SIGTERM ignored

    @Test("a tool that ignores SIGTERM is SIGKILLed after the grace period",
          .timeLimit(.minutes(1)))
    func sigtermIgnored() async throws {
        let dir = try TemporaryDirectory()
        let records = dir.url("records")
        let spec = ProcessSpec(
            script("ignore_sigterm.sh"), logPath: dir.url("tool.log"),
            timeout: .seconds(1), grace: .seconds(1))
        let clock = ContinuousClock()
        let start = clock.now
        let result = try await ProcessRunner(recordDirectory: records).run(spec)
        let elapsed = start.duration(to: clock.now)

        #expect(result.outcome == .timedOut)
        #expect(result.status == .signalled(SIGKILL))
        #expect(result.outputTail.contains("ignoring SIGTERM"))
        #expect(elapsed >= .seconds(1.9), "grace period not honoured")
        #expect(elapsed <= .seconds(10), "deadline + grace + slack for a loaded machine exceeded")
        #expect(result.survivors.isEmpty)
        #expect(try recordFiles(records).isEmpty, "record not removed after the sweep")
        await expectGroupGone(result.processGroup)
    }

    // MARK: (3) A helper left behind

    @Test("a helper the tool leaves behind is killed after a normal exit",
          .timeLimit(.minutes(1)))
    func grandchildSwept() async throws {
        let dir = try TemporaryDirectory()
        let pidFile = dir.url("helper.pid")
        let spec = ProcessSpec(
            script("fork_grandchild.sh"), arguments: [pidFile.path], logPath: dir.url("tool.log"),
            timeout: .seconds(20))
        let clock = ContinuousClock()
        let start = clock.now
        let result = try await ProcessRunner().run(spec)
        let elapsed = start.duration(to: clock.now)

        #expect(result.outcome == .exited(0))
        #expect(result.succeeded)
        #expect(elapsed < .seconds(12), "run waited for the helper (sleep 1000)")
        let helper = try #require(pid_t(String(contentsOf: pidFile, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(processGroupOf(helper).map { $0 == result.processGroup } ?? true,
                "the helper was not in the tool's group")
        #expect(!isAlive(helper), "helper \(helper) outlived the run")
        await expectGroupGone(result.processGroup)
    }

    // MARK: (4) Crash midway

    @Test("a crash is reported with the last output", .timeLimit(.minutes(1)),
          arguments: ["segv", "exit139"])
    func crash(mode: String) async throws {
        let dir = try TemporaryDirectory()
        let spec = ProcessSpec(
            script("crash.sh"), arguments: [mode], workingDirectory: dir.root,
            logPath: dir.url("tool.log"), timeout: .seconds(20))
        let result = try await ProcessRunner().run(spec)

        switch mode {
        case "segv":
            #expect(result.outcome == .signalled(SIGSEGV))
            #expect(result.status == .signalled(SIGSEGV))
        default:
            #expect(result.outcome == .exited(139))
            #expect(result.status == .exited(139))
        }
        #expect(result.outputTail.contains("step 2 of 3: gridding; about to crash"))
        #expect(!result.outputTail.contains("never reached"))
        do {
            try result.checked()
            Issue.record("checked() accepted a crash")
        } catch {
            #expect(error.code == .toolFailed)
            #expect(error.message.contains("about to crash"))
            #expect(error.context?.contains("crash.sh") == true)
        }
        await expectGroupGone(result.processGroup)
    }

    // MARK: (5) Output flood

    @Test("a flood of output neither blocks the tool nor fills memory", .timeLimit(.minutes(1)))
    func flood() async throws {
        let dir = try TemporaryDirectory()
        let bytes = 200 * 1024 * 1024
        let delivered = Counter()
        let spec = ProcessSpec(
            script("flood.sh"), arguments: ["\(bytes)"], logPath: dir.url("flood.log"),
            timeout: .seconds(50), stallTimeout: .seconds(10))
        let peakBefore = peakMemoryKiB()
        let result = try await ProcessRunner().run(spec) { delivered.add($0.utf8.count + 1) }
        let peakAfter = peakMemoryKiB()

        #expect(result.outcome == .exited(0))
        #expect(result.outputTail.hasSuffix("flood done\n"))
        #expect(result.outputTail.utf8.count <= ProcessRunner.tailBytes)
        let logSize = try FileManager.default.attributesOfItem(atPath: dir.url("flood.log").path)[.size] as? Int
        #expect(logSize == bytes + "flood done\n".utf8.count)
        // The callback is told what there is time for, not 200 MB.
        #expect(delivered.value < 32 * 1024 * 1024)
        #expect(delivered.value > 0)
        #expect(peakAfter - peakBefore < 64 * 1024, "peak memory grew by \(peakAfter - peakBefore) KiB")
        await expectGroupGone(result.processGroup)
    }

    // MARK: (6) Cancellation

    @Test("cancelling the task stops the whole group", .timeLimit(.minutes(1)))
    func cancellation() async throws {
        let dir = try TemporaryDirectory()
        let records = dir.url("records")
        let pidFile = dir.url("helper.pid")
        let lines = Lines()
        let runner = ProcessRunner(recordDirectory: records)
        let spec = ProcessSpec(
            script("wait_forever.sh"), arguments: [pidFile.path], logPath: dir.url("tool.log"),
            timeout: .seconds(50), grace: .seconds(20))
        let task = Task { try await runner.run(spec) { lines.append($0) } }

        try await pollUntil("the tool is ready") { lines.all.contains("ready") }
        let live = try recordFiles(records)
        #expect(live.count == 1, "no record of the running group")
        let clock = ContinuousClock()
        let cancelled = clock.now
        task.cancel()
        let result = try await task.value
        let stopTime = cancelled.duration(to: clock.now)

        #expect(result.outcome == .cancelled)
        #expect(live == ["pgid-\(result.processGroup)"])
        #expect(stopTime < .seconds(12), "stopping a SIGTERM-obeying tool took \(stopTime) (grace is 20 s)")
        let helper = try #require(pid_t(String(contentsOf: pidFile, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(!isAlive(helper))
        #expect(try recordFiles(records).isEmpty)
        let error = #expect(throws: PipelineError.self) { try result.checked() }
        #expect(error?.code == .interrupted)
        await expectGroupGone(result.processGroup)
    }

    @Test("a task cancelled before the spawn starts nothing", .timeLimit(.minutes(1)))
    func cancelledBeforeStart() async throws {
        let dir = try TemporaryDirectory()
        let marker = dir.url("ran")
        let spec = ProcessSpec(
            "touch", arguments: [marker.path], logPath: dir.url("tool.log"), timeout: .seconds(5))
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await ProcessRunner().run(spec)
        }
        let error = await #expect(throws: PipelineError.self) { _ = try await task.value }
        #expect(error?.code == .interrupted)
        #expect(!FileManager.default.fileExists(atPath: marker.path))
    }

    // MARK: (7) Leftovers of a SIGKILLed selfcal

    @Test("sweepLeftovers kills a group recorded by an earlier run", .timeLimit(.minutes(1)))
    func sweepLeftovers() async throws {
        let dir = try TemporaryDirectory()
        let records = dir.url("records")
        let leftover = try await spawnDetachedSleep()
        try ProcessRecord(
            pgid: leftover, startTime: nil, arguments: ["sleep", "1000"],
            executablePath: "/usr/bin/sleep", ownerPID: nil, ownerStartTime: nil,
            command: "sleep 1000"
        ).write(in: records)

        let killed = await ProcessRunner.sweepLeftovers(in: records)
        if killed.isEmpty { kill(leftover, SIGKILL) }

        #expect(killed == [leftover])
        #expect(waitForExit(leftover) == SIGKILL)
        #expect(try recordFiles(records).isEmpty)
        await expectGroupGone(leftover)
    }

    @Test("sweepLeftovers spares a pid that now runs something else", .timeLimit(.minutes(1)))
    func sweepLeftoversSparesReusedPID() async throws {
        let dir = try TemporaryDirectory()
        let records = dir.url("records")
        let other = try await spawnDetachedSleep()
        defer {
            kill(-other, SIGKILL)
            _ = waitForExit(other)
        }
        let startTime = try #require(startTimeOf(other))
        // Same pid, another command: the recorded tool is gone and its pid was given out again.
        try ProcessRecord(
            pgid: other, startTime: nil, arguments: ["wsclean", "-predict", "-name", "x"],
            executablePath: "/usr/bin/wsclean", ownerPID: nil, ownerStartTime: nil,
            command: "wsclean -predict -name x"
        ).write(in: records)
        #expect(await ProcessRunner.sweepLeftovers(in: records).isEmpty)
        #expect(isAlive(other))
        #expect(try recordFiles(records).isEmpty, "stale record kept")

        // Same command, but started later than the recorded one.
        try ProcessRecord(
            pgid: other, startTime: startTime - 1, arguments: ["sleep", "1000"],
            executablePath: "/usr/bin/sleep", ownerPID: nil, ownerStartTime: nil,
            command: "sleep 1000"
        ).write(in: records)
        #expect(await ProcessRunner.sweepLeftovers(in: records).isEmpty)
        #expect(isAlive(other))

        // Recorded by a selfcal that is still running (this one): not a leftover.
        let me = getpid()
        try ProcessRecord(
            pgid: other, startTime: startTime, arguments: ["sleep", "1000"],
            executablePath: "/usr/bin/sleep", ownerPID: me, ownerStartTime: startTimeOf(me),
            command: "sleep 1000"
        ).write(in: records)
        #expect(await ProcessRunner.sweepLeftovers(in: records).isEmpty)
        #expect(isAlive(other))
        #expect(try recordFiles(records) == ["pgid-\(other)"], "a live selfcal's record was removed")
    }

    // MARK: Starting

    @Test("arguments, environment and working directory reach the child untouched",
          .timeLimit(.minutes(1)))
    func argumentsAndEnvironment() async throws {
        let dir = try TemporaryDirectory()
        let tricky = ["two words", "$HOME;rm -rf x", "'quoted'", ""]
        let spec = ProcessSpec(
            "bash", arguments: [script("show_environment.sh")] + tricky,
            environment: ["SELFCAL_TEST_VALUE": "a b\tc"], workingDirectory: dir.root,
            logPath: dir.url("tool.log"), timeout: .seconds(20))
        let result = try await ProcessRunner().run(spec).checked()

        let expected = ["cwd=\(dir.root.resolvingSymlinksInPath().path)", "SELFCAL_TEST_VALUE=a b\tc"]
            + tricky.map { "arg=[\($0)]" }
        #expect(result.outputTail.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            .map(String.init) == expected)
        #expect(result.executablePath.hasSuffix("/bash"))
        #expect(result.commandLine.contains("'two words'"))
        await expectGroupGone(result.processGroup)
    }

    @Test("a missing executable is a configuration error naming it", .timeLimit(.minutes(1)))
    func missingExecutable() async throws {
        let dir = try TemporaryDirectory()
        for name in ["selfcal-no-such-tool", "/nonexistent/wsclean"] {
            let spec = ProcessSpec(name, logPath: dir.url("tool.log"), timeout: .seconds(5))
            let error = await #expect(throws: PipelineError.self) { _ = try await ProcessRunner().run(spec) }
            #expect(error?.code == .badConfig)
            #expect(error?.context == name)
            #expect(error?.message.contains(name) == true)
        }
    }

    @Test("a log file that cannot be written is a configuration error", .timeLimit(.minutes(1)))
    func unwritableLog() async throws {
        let spec = ProcessSpec("true", logPath: URL(fileURLWithPath: "/nonexistent/dir/tool.log"))
        let error = await #expect(throws: PipelineError.self) { _ = try await ProcessRunner().run(spec) }
        #expect(error?.code == .badConfig)
    }
}

// MARK: - Unit tests of the pieces

@Suite("ProcessRunner internals")
struct ProcessRunnerInternalsTests {
    @Test func lineSplitter() {
        let clock = ContinuousClock()
        let t0 = clock.now
        var splitter = LineSplitter()
        #expect(splitter.append(Array("a\r\nb\n 0%....".utf8)[...], at: t0) == ["a", "b"])
        #expect(splitter.takeStale(at: t0 + .milliseconds(100)) == nil)
        #expect(splitter.takeStale(at: t0 + .milliseconds(300)) == " 0%....")
        #expect(splitter.append(Array("10%....100%\nrest".utf8)[...], at: t0) == ["10%....100%"])
        #expect(splitter.finish() == "rest")
        splitter.skipToNextLine()
        #expect(splitter.append(Array("cut line\nwhole\n".utf8)[...], at: t0) == ["whole"])
    }

    @Test func procStatParsing() {
        let line = "4242 (a (strange) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 0"
        let stat = ProcFS.parseStat(Array(line.utf8), pid: 4242)
        #expect(stat == ProcessStat(pid: 4242, state: "S", processGroup: 4242, startTime: 98765))
    }

    @Test func recordCommandMatching() {
        let record = ProcessRecord(
            pgid: 7, startTime: nil, arguments: ["/opt/x/run.sh", "-a", "b"],
            executablePath: "/opt/x/run.sh", ownerPID: nil, ownerStartTime: nil, command: "")
        #expect(record.looksLike(commandLine: ["/opt/x/run.sh", "-a", "b"]))
        #expect(record.looksLike(commandLine: ["/bin/bash", "/opt/x/run.sh", "-a", "b"]))
        #expect(!record.looksLike(commandLine: ["/bin/bash", "/opt/x/other.sh", "-a", "b"]))
        #expect(!record.looksLike(commandLine: ["/opt/x/run.sh", "-a"]))
        #expect(!record.looksLike(commandLine: []))
    }

    @Test func shellQuoting() {
        #expect(shellQuoted("wsclean") == "wsclean")
        #expect(shellQuoted("-size") == "-size")
        #expect(shellQuoted("a b") == "'a b'")
        #expect(shellQuoted("it's") == #"'it'\''s'"#)
        #expect(shellQuoted("") == "''")
    }
}

// MARK: - Helpers

/// The path of a fault script in Tests/SelfCalTests/FaultScripts (not a SwiftPM resource).
private func script(_ name: String) -> String {
    TestSupport.testsDir.appendingPathComponent("FaultScripts").appendingPathComponent(name).path
}

/// A fresh directory, removed when the value goes away.
private final class TemporaryDirectory {
    let root: URL

    init() throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("selfcal-process-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func url(_ name: String) -> URL { root.appendingPathComponent(name) }

    deinit { try? FileManager.default.removeItem(at: root) }
}

/// Lines handed to `onOutput`, collected across threads.
private final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []

    func append(_ line: String) { lock.withLock { items.append(line) } }
    var all: [String] { lock.withLock { items } }
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var total = 0

    func add(_ n: Int) { lock.withLock { total += n } }
    var value: Int { lock.withLock { total } }
}

private func recordFiles(_ directory: URL) throws -> [String] {
    guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
    return try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
}

/// Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, ...].
private func statFields(_ pid: pid_t) -> [Substring]? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")")
    else { return nil }
    return text[text.index(after: close)...].split(separator: " ")
}

/// Alive: exists and is not a zombie.
private func isAlive(_ pid: pid_t) -> Bool {
    guard let fields = statFields(pid) else { return false }
    return fields[0] != "Z" && fields[0] != "X"
}

private func processGroupOf(_ pid: pid_t) -> pid_t? {
    statFields(pid).flatMap { pid_t($0[2]) }
}

private func startTimeOf(_ pid: pid_t) -> UInt64? {
    statFields(pid).flatMap { UInt64($0[19]) }
}

/// No live process is left in the group, and the group itself disappears (`kill(-pgid, 0)`
/// fails with ESRCH). Killed grandchildren are reparented to PID 1, which on some machines reaps
/// them only every few seconds; until then they are zombies in the group, so allow for that.
private func expectGroupGone(_ pgid: pid_t, sourceLocation: SourceLocation = #_sourceLocation) async {
    let live = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?
        .compactMap { pid_t($0) }
        .filter { isAlive($0) && processGroupOf($0) == pgid } ?? []
    #expect(live.isEmpty, "live processes left in group \(pgid): \(live)", sourceLocation: sourceLocation)

    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(10)
    var result: Int32 = 0
    var error: Int32 = 0
    repeat {
        result = kill(-pgid, 0)
        error = errno
        if result != 0 { break }
        try? await Task.sleep(for: .milliseconds(50))
    } while clock.now < deadline
    #expect(result == -1 && error == ESRCH, "group \(pgid) still exists", sourceLocation: sourceLocation)
}


/// `setsid sleep 1000` as a direct child of the test process, in a session and group of its own
/// (as a tool started by an earlier selfcal would be); returns its pid once it runs `sleep`.
private func spawnDetachedSleep() async throws -> pid_t {
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("selfcal-setsid-\(UUID().uuidString).log")
    defer { try? FileManager.default.removeItem(at: log) }
    let pid = try Syscall.spawn(path: "/usr/bin/setsid", options: .init(
        argv: ["setsid", "sleep", "1000"], environment: ["PATH=/usr/bin:/bin"],
        workingDirectory: nil, outputPath: log.path, newProcessGroup: false))
    try await pollUntil("setsid has become sleep") {
        (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) == "sleep\u{0}1000\u{0}"
            && processGroupOf(pid) == pid
    }
    return pid
}

/// Blocks until our child `pid` ends; returns the signal that killed it (0 if it exited).
private func waitForExit(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    guard waitpid(pid, &status, 0) == pid else { return -1 }
    return status & 0x7f
}

/// VmHWM, the peak resident memory of this process, in KiB.
private func peakMemoryKiB() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
    else { return 0 }
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
}
